/**
 * Calico from the pinned upstream manifest, patched on the parsed YAML (pure): the pod
 * CIDR, IP-in-IP off, and the veth MTU, as on the production server. If upstream's shape
 * changed (a document or variable moved), this fails loudly instead of shipping a silent no-op.
 */
import { parseAllDocuments, type Document } from 'yaml';
import { LabError } from '../../core/errors.ts';
import { findManifestDocument } from './k8s-object.ts';

export const CALICO = {
  version: 'v3.32.1',
  url: 'https://raw.githubusercontent.com/projectcalico/calico/v3.32.1/manifests/calico.yaml',
  sha256: 'a1df919d9721cf667accdc3e72848911b0cb25cfab7d2478ad0c996302c95744',
} as const;

export interface CalicoSettings {
  podSubnet: string;
  ipip: 'Always' | 'CrossSubnet' | 'Never';
  vethMtu: number;
}

export const PRODUCTION_CALICO: Omit<CalicoSettings, 'podSubnet'> = { ipip: 'Never', vethMtu: 1500 };

type EnvVar = { name: string; value?: string; valueFrom?: unknown };

const find = (docs: Document[], kind: string, name: string) => findManifestDocument(docs, kind, name, `Calico ${CALICO.version}`, 'cloud-init/addons/calico.ts');

export function patchCalicoManifest(text: string, settings: CalicoSettings): string {
  const docs = parseAllDocuments(text) as Document[];
  const config = find(docs, 'ConfigMap', 'calico-config');
  if (!config.hasIn(['data', 'veth_mtu'])) throw new LabError('calico-config has no data.veth_mtu: upstream changed shape', 'update cloud-init/addons/calico.ts');
  config.setIn(['data', 'veth_mtu'], String(settings.vethMtu));

  const node = find(docs, 'DaemonSet', 'calico-node');
  const containers = node.getIn(['spec', 'template', 'spec', 'containers']) as { toJSON(): { name: string }[] } | undefined;
  const index = containers?.toJSON().findIndex((c) => c.name === 'calico-node') ?? -1;
  if (index < 0) throw new LabError('DaemonSet calico-node has no calico-node container: upstream changed shape', 'update cloud-init/addons/calico.ts');
  const envPath = ['spec', 'template', 'spec', 'containers', index, 'env'];
  const env = (node.getIn(envPath) as { toJSON(): EnvVar[] }).toJSON();
  const set = (name: string, value: string, mustExist: boolean) => {
    const at = env.findIndex((e) => e.name === name);
    if (at < 0 && mustExist) throw new LabError(`calico-node has no ${name}: upstream changed shape`, 'update cloud-init/addons/calico.ts');
    if (at < 0) env.push({ name, value });
    else env[at] = { name, value };
  };
  set('CALICO_IPV4POOL_IPIP', settings.ipip, true);
  set('CALICO_IPV4POOL_VXLAN', 'Never', true);
  // Commented out upstream: added.
  set('CALICO_IPV4POOL_CIDR', settings.podSubnet, false);
  node.setIn(envPath, node.createNode(env));
  return docs.map((d) => d.toString({ lineWidth: 0 })).join('');
}
