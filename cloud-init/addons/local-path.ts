/**
 * Storage: local-path-provisioner v0.0.36 from the pinned upstream manifest, patched on the
 * parsed YAML (pure): the default StorageClass, data under the configured directory (one
 * directory per PVC), and a pinned helper image instead of upstream's untagged busybox, so the
 * offline image list is complete and nothing floats.
 */
import { parse, parseAllDocuments, stringify, type Document } from 'yaml';
import { LabError } from '../../core/errors.ts';
import { findManifestDocument } from './k8s-object.ts';

export const LOCAL_PATH = {
  version: 'v0.0.36',
  url: 'https://raw.githubusercontent.com/rancher/local-path-provisioner/v0.0.36/deploy/local-path-storage.yaml',
} as const;

export interface LocalPathSettings {
  dataDir: string;
  /** Pinned helper image (the lock file supplies its digest). */
  helperImage: string;
  /** The server profile (issue 11): stable volume paths and Retain, so a restored directory binds to the same claim. */
  pathPattern?: string;
  reclaimPolicy?: 'Retain' | 'Delete';
}

/** `<storageDir>/<namespace>/<pvc>` instead of a new `<pv>_<ns>_<pvc>` on every cluster. */
export const STABLE_PATH_PATTERN = '{{ .PVC.Namespace }}/{{ .PVC.Name }}';

const find = (docs: Document[], kind: string, name: string) => findManifestDocument(docs, kind, name, `local-path-provisioner ${LOCAL_PATH.version}`, 'cloud-init/addons/local-path.ts');

export function patchLocalPathManifest(text: string, settings: LocalPathSettings): string {
  const docs = parseAllDocuments(text) as Document[];
  const sc = find(docs, 'StorageClass', 'local-path');
  sc.setIn(['metadata', 'annotations'], sc.createNode({ 'storageclass.kubernetes.io/is-default-class': 'true' }));
  if (settings.pathPattern) sc.setIn(['parameters', 'pathPattern'], settings.pathPattern);
  if (settings.reclaimPolicy) sc.set('reclaimPolicy', settings.reclaimPolicy);

  const cm = find(docs, 'ConfigMap', 'local-path-config');
  const config = JSON.parse(String(cm.getIn(['data', 'config.json']))) as { nodePathMap: { node: string; paths: string[] }[] };
  const fallback = config.nodePathMap.find((m) => m.node === 'DEFAULT_PATH_FOR_NON_LISTED_NODES');
  if (!fallback) throw new LabError('local-path-config has no DEFAULT_PATH_FOR_NON_LISTED_NODES entry: upstream changed shape', 'update cloud-init/addons/local-path.ts');
  fallback.paths = [settings.dataDir];
  cm.setIn(['data', 'config.json'], JSON.stringify(config, null, 2));

  const helper = parse(String(cm.getIn(['data', 'helperPod.yaml']))) as { spec: { containers: { name: string; image: string }[] } };
  const container = helper.spec.containers.find((c) => c.name === 'helper-pod');
  if (!container) throw new LabError('helperPod.yaml has no helper-pod container: upstream changed shape', 'update cloud-init/addons/local-path.ts');
  container.image = settings.helperImage;
  cm.setIn(['data', 'helperPod.yaml'], stringify(helper));
  return docs.map((d) => d.toString({ lineWidth: 0 })).join('');
}
