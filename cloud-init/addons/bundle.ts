/**
 * Everything the first boot applies, rendered from lab.yaml and the locked upstream manifests
 * (pure). The file names order the bootstrap's steps. The image list comes from the same
 * rendered manifests, so what the cluster runs and what the image carries cannot drift apart.
 */
import { stringify } from 'yaml';
import type { LabConfig } from '../../config/lab-config.ts';
import { CALICO, patchCalicoManifest, PRODUCTION_CALICO } from './calico.ts';
import { CERT_MANAGER, renderLabCaIssuer, renderLabCaSecret, renderWildcardCertificate } from './cert-manager.ts';
import { imagesInManifests } from './images.ts';
import type { K8sObject } from './k8s-object.ts';
import { LOCAL_PATH, patchLocalPathManifest } from './local-path.ts';
import { renderEgressPolicies } from './network-policies.ts';
import { renderTraefikObjects, TRAEFIK_NAMESPACE } from './traefik.ts';

/** Upstream manifests, by the names the lock file uses. */
export const UPSTREAM_MANIFESTS = { calico: CALICO.url, 'cert-manager': CERT_MANAGER.url, 'local-path': LOCAL_PATH.url } as const;
export type UpstreamManifestName = keyof typeof UPSTREAM_MANIFESTS;
export type UpstreamTexts = Record<UpstreamManifestName, string>;
export const UPSTREAM_MANIFEST_NAMES = Object.keys(UPSTREAM_MANIFESTS) as UpstreamManifestName[];

export const TRAEFIK_IMAGE = 'docker.io/library/traefik:v3.7';
/** Replaces local-path's untagged busybox. */
export const LOCAL_PATH_HELPER_IMAGE = 'docker.io/library/busybox:1.37.0';
/** What the acceptance suite runs in the cluster: the upstream e2e suites' own test image. */
export const ACCEPTANCE_IMAGES = ['registry.k8s.io/e2e-test-images/agnhost:2.53'] as const;

export const NODE_PORTS = { http: 30080, https: 30443 } as const;

/**
 * Where the acceptance suite's Ingress must live: Traefik serves (and reads Secrets in) only the
 * namespaces it is given, so the suite gets a fixed one the bootstrap creates.
 */
export const ACCEPTANCE_INGRESS_NAMESPACE = 'labsmith-e2e';

/** The namespaces whose Ingresses Traefik serves: the app namespaces (policyNamespaces) and the suite's. */
export function ingressNamespaces(config: LabConfig): string[] {
  return [...new Set([...config.addons.policyNamespaces, ACCEPTANCE_INGRESS_NAMESPACE])];
}

export interface AddonManifest {
  /** File name under the bootstrap directory; the prefix orders the steps. */
  file: string;
  text: string;
}

function yamlDocs(objects: object[]): string {
  return objects.map((o) => stringify(o, { lineWidth: 0 })).join('---\n');
}

/**
 * The add-ons that hold no secret: safe to show in `lab:render` and to derive images from.
 * With only some upstream texts at hand (lab:render before the lock is filled), the others are left out.
 */
export function renderAddonManifests(config: LabConfig, upstream: Partial<UpstreamTexts>): AddonManifest[] {
  const policies = config.addons.policyNamespaces.flatMap((ns) => renderEgressPolicies(ns, { defaultDeny: config.addons.defaultDenyEgress }));
  const { calico, 'cert-manager': certManager, 'local-path': localPath } = upstream;
  return [
    ...(calico === undefined ? [] : [{ file: '10-calico.yaml', text: patchCalicoManifest(calico, { podSubnet: config.kubernetes.podSubnet, ...PRODUCTION_CALICO }) }]),
    ...(certManager === undefined ? [] : [{ file: '20-cert-manager.yaml', text: certManager }]),
    ...(localPath === undefined ? [] : [{ file: '40-local-path.yaml', text: patchLocalPathManifest(localPath, { dataDir: config.addons.storageDir, helperImage: LOCAL_PATH_HELPER_IMAGE }) }]),
    { file: '50-traefik.yaml', text: yamlDocs(renderTraefikObjects({ image: TRAEFIK_IMAGE, httpNodePort: NODE_PORTS.http, httpsNodePort: NODE_PORTS.https, ingressNamespaces: ingressNamespaces(config) })) },
    { file: '60-network-policies.yaml', text: yamlDocs(policies) },
  ];
}

/** The lab CA as the issuer and the wildcard certificate: rendered per lab at lab:up (holds the CA key). */
export function renderLabTlsManifest(config: LabConfig, ca: { certPem: string; keyPem: string }): AddonManifest {
  const objects: K8sObject[] = [
    renderLabCaSecret(ca),
    renderLabCaIssuer(),
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: TRAEFIK_NAMESPACE } },
    renderWildcardCertificate({ domain: config.addons.ingressDomain, namespace: TRAEFIK_NAMESPACE }),
  ];
  return { file: '30-lab-tls.yaml', text: yamlDocs(objects) };
}

/** Docker Hub's short names, as containerd and the kubelet expand them. */
export function normalizeImageRef(ref: string): string {
  const first = ref.split('/')[0]!;
  const hasRegistry = ref.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (hasRegistry) return ref;
  return ref.includes('/') ? `docker.io/${ref}` : `docker.io/library/${ref}`;
}

/** Every image the cluster needs: kubeadm's, the add-ons', the acceptance suite's and the user's workloads', normalized and sorted. */
export function clusterImages(kubeadmImages: string[], addons: AddonManifest[], workloads: string[] = []): string[] {
  const all = [...kubeadmImages, ...imagesInManifests(addons.map((a) => a.text)), ...ACCEPTANCE_IMAGES, ...workloads].map(normalizeImageRef);
  return [...new Set(all)].sort();
}

/** lab.yaml `workloads[].images`: baked like the cluster's own, so the replica boots with no registry. */
export function workloadImages(config: Pick<LabConfig, 'workloads'>): string[] {
  return config.workloads.flatMap((w) => w.images).map(normalizeImageRef);
}

/** Each workload image the lock does not pin yet, by its field (pure): the build would lack it. */
export function workloadImagesMissingFromLock(config: Pick<LabConfig, 'workloads'>, lockedRefs: string[]): string[] {
  const locked = new Set(lockedRefs);
  return config.workloads.flatMap((w, i) => w.images.flatMap((ref, j) => (locked.has(normalizeImageRef(ref)) ? [] : [`workloads.${i}.images.${j}: ${ref} is not in the lock`])));
}
