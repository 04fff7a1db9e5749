/**
 * Add-on versions for a Kubernetes target minor, and where each goes in the upgrade (before or
 * after the control plane), as data the lock's target section and the upgrade plan both read.
 *
 * The rows for 1.38 are the versions the image runs today (REFERENCE.md, December 2026): 1.38 is
 * not released yet, and the upstream support matrices (below) were not reachable from the machine
 * this was written on, so `supportChecked` is false for every row: the rehearsal on the replica is
 * what proves them, and the runbook says so. Update a row (and set supportChecked) once its
 * project publishes support for the minor.
 */
import { UPSTREAM_MANIFESTS } from '../../cloud-init/addons/bundle.ts';

export type AddonName = 'calico' | 'cert-manager' | 'traefik' | 'local-path';

export interface AddonRelease {
  name: AddonName;
  version: string;
  /** The upstream manifest the lock pins (Traefik is rendered by labsmith from its image). */
  manifestUrl?: string;
  /** Calico (the CNI) must support the new kubelet before it starts; the others follow the API server. */
  when: 'before-control-plane' | 'after-control-plane';
  /** Where the project publishes which Kubernetes minors a release supports. */
  supportSource: string;
  supportChecked: boolean;
  /** Notes for the runbook (e.g. one minor at a time). */
  notes: string;
}

const CURRENT: readonly AddonRelease[] = [
  { name: 'calico', version: 'v3.32.1', manifestUrl: UPSTREAM_MANIFESTS.calico, when: 'before-control-plane', supportSource: 'https://docs.tigera.io/calico/latest/getting-started/kubernetes/requirements', supportChecked: false, notes: 'server-side apply of the patched manifest (same CIDR, IPIP and MTU patches as the bootstrap)' },
  { name: 'cert-manager', version: 'v1.21.1', manifestUrl: UPSTREAM_MANIFESTS['cert-manager'], when: 'after-control-plane', supportSource: 'https://cert-manager.io/docs/releases/', supportChecked: false, notes: 'one minor at a time; its CRDs are in the static manifest and are applied with it' },
  { name: 'traefik', version: 'v3.7', when: 'after-control-plane', supportSource: 'https://doc.traefik.io/traefik/providers/kubernetes-ingress/', supportChecked: false, notes: 'CRDs first when the lab uses any (this lab uses the file provider and Ingress: none)' },
  { name: 'local-path', version: 'v0.0.36', manifestUrl: UPSTREAM_MANIFESTS['local-path'], when: 'after-control-plane', supportSource: 'https://github.com/rancher/local-path-provisioner/releases', supportChecked: false, notes: 'volumes stay in their directories; the canaries prove it' },
];

/** Releases by target minor; a minor without a row of its own keeps the current versions. */
export const ADDON_RELEASES: Readonly<Record<string, readonly AddonRelease[]>> = {
  '1.37': CURRENT,
  '1.38': CURRENT,
};

export function addonReleasesFor(minor: string): readonly AddonRelease[] {
  return ADDON_RELEASES[minor] ?? CURRENT;
}
