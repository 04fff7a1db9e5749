/**
 * What the cluster itself brings, for validating the workloads (pure): the kinds its add-ons
 * define (the CRDs in the locked Calico and cert-manager manifests) and the namespaces its
 * bootstrap makes (Kubernetes' own and every Namespace in the rendered add-ons).
 */
import { parseAllDocuments } from 'yaml';
import { renderAddonManifests, renderLabTlsManifest, UPSTREAM_MANIFEST_NAMES, type UpstreamTexts } from '../../cloud-init/addons/bundle.ts';
import type { LabConfig } from '../../config/lab-config.ts';
import { crdKindsOf, type CrdKind } from './schemas.ts';

export const KUBERNETES_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'] as const;

/** API groups each upstream add-on's CRDs define (for a message when its manifest is not cached yet). */
export const ADDON_GROUPS: Record<(typeof UPSTREAM_MANIFEST_NAMES)[number], string[]> = {
  calico: ['crd.projectcalico.org', 'policy.networking.k8s.io'],
  'cert-manager': ['cert-manager.io', 'acme.cert-manager.io'],
  'local-path': [],
};

export interface ClusterFacts {
  addonCrds: CrdKind[];
  clusterNamespaces: string[];
  unavailableGroups: Record<string, string>;
}

const docsOf = (text: string): unknown[] => parseAllDocuments(text).map((d) => d.toJS()).filter((o) => o !== null && o !== undefined);

export function clusterFactsFor(config: LabConfig, upstream: Partial<UpstreamTexts>): ClusterFacts {
  const addonCrds = UPSTREAM_MANIFEST_NAMES.flatMap((name) => (upstream[name] === undefined ? [] : crdKindsOf(docsOf(upstream[name]!), () => `the ${name} add-on`)));
  const unavailableGroups: Record<string, string> = {};
  for (const name of UPSTREAM_MANIFEST_NAMES) {
    if (upstream[name] === undefined) for (const g of ADDON_GROUPS[name]) unavailableGroups[g] = `the ${name} add-on's locked manifest (with its CRDs) is not in the cache yet: image:build or image:fetch-artifacts fetches it`;
  }
  const addons = [...renderAddonManifests(config, upstream), renderLabTlsManifest(config, { certPem: '', keyPem: '' })];
  const namespaces = new Set<string>(KUBERNETES_NAMESPACES);
  for (const a of addons) for (const o of docsOf(a.text) as { kind?: string; metadata?: { name?: string } }[]) if (o?.kind === 'Namespace' && o.metadata?.name) namespaces.add(o.metadata.name);
  return { addonCrds, clusterNamespaces: [...namespaces].sort(), unavailableGroups };
}
