/**
 * Upgrade pre-checks (pure): each takes facts gathered elsewhere and returns every problem it
 * finds, so the rehearsal reports them all at once and stops before anything changes.
 */
import { LineCounter, parseAllDocuments } from 'yaml';

export interface PrecheckProblem {
  check: 'version-skew' | 'containerd' | 'removed-api' | 'images' | 'disk' | 'kubeadm-config' | 'cluster' | 'inputs';
  message: string;
  hint: string;
}

interface Minor { major: number; minor: number }

function parseMinor(version: string): Minor | undefined {
  const m = /^v?(\d+)\.(\d+)(?:\.\d+)?$/.exec(version.trim());
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : undefined;
}

/** kubeadm upgrades one minor at a time; downgrades are not an upgrade. */
export function checkVersionSkew(installed: string, target: string): PrecheckProblem[] {
  const from = parseMinor(installed);
  const to = parseMinor(target);
  if (!from || !to) {
    return [{ check: 'version-skew', message: `cannot read Kubernetes version ${!from ? `installed "${installed}"` : `target "${target}"`}`, hint: 'give versions as MAJOR.MINOR, e.g. --to 1.38' }];
  }
  if (from.major !== to.major) return [{ check: 'version-skew', message: `${installed} → ${target} changes the major version`, hint: 'only minor upgrades within 1.x are supported' }];
  const steps = to.minor - from.minor;
  if (steps === 1) return [];
  if (steps === 0) return [{ check: 'version-skew', message: `the cluster already runs ${from.major}.${from.minor}`, hint: `pass --to ${from.major}.${from.minor + 1} to upgrade` }];
  if (steps < 0) return [{ check: 'version-skew', message: `${installed} → ${target} is a downgrade; kubeadm does not downgrade`, hint: 'roll back to the snapshot taken before the upgrade instead (lab:upgrade --rollback)' }];
  const path = Array.from({ length: steps + 1 }, (_, i) => `${from.major}.${from.minor + i}`);
  return [{ check: 'version-skew', message: `${installed} → ${target} skips ${steps - 1} minor(s); kubeadm upgrades one minor at a time`, hint: `upgrade in steps: ${path.join(' → ')}` }];
}

/**
 * The oldest containerd each Kubernetes minor's kubelet accepts. Source: /work/shared/REFERENCE.md
 * ("containerd 1.x works up to 1.37; the kubelet refuses containerd 1.x from 1.38"); minors not
 * listed need 1.7 (the image's containerd).
 */
export const MIN_CONTAINERD: Record<string, string> = {
  '1.38': '2.0',
};

function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.+~-]/).map((p) => Number.parseInt(p, 10) || 0);
  const pb = b.split(/[.+~-]/).map((p) => Number.parseInt(p, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export function minimumContainerdFor(target: string): string {
  const t = parseMinor(target);
  if (!t) return '1.7';
  // The table holds the minor where the floor rose; later minors inherit it.
  let floor = '1.7';
  for (const [minor, min] of Object.entries(MIN_CONTAINERD)) {
    const m = parseMinor(minor)!;
    if (m.major === t.major && m.minor <= t.minor && compareVersions(min, floor) > 0) floor = min;
  }
  return floor;
}

/** `installed` is containerd's version as `containerd --version` or dpkg prints it, e.g. 1.7.24~ds1-6. */
export function checkContainerd(installed: string, target: string): PrecheckProblem[] {
  const min = minimumContainerdFor(target);
  const version = /(\d+\.\d+(?:\.\d+)?)/.exec(installed)?.[1];
  if (!version) return [{ check: 'containerd', message: `cannot read the installed containerd version "${installed}"`, hint: 'check `containerd --version` in the guest' }];
  if (compareVersions(version, min) >= 0) return [];
  return [{ check: 'containerd', message: `Kubernetes ${target} needs containerd ≥ ${min}; the node has ${version}`, hint: `move containerd to ${min}.x first (Debian forky's containerd 2.1.9, config migrated to version 3)` }];
}

export interface RemovedApi {
  apiVersion: string;
  kinds: readonly string[];
  removedIn: string;
  replacement: string;
}

/**
 * APIs that stop being served, by the release that removes them. Source: Kubernetes' Deprecated API
 * Migration Guide (kubernetes.io/docs/reference/using-api/deprecation-guide/), checked 2026-12-01.
 * Its newest removal is v1.32 (flowcontrol v1beta3); it documents NO removal for 1.33 to 1.38, so a
 * 1.37 → 1.38 upgrade finds none in this table. Older rows stay so an old cluster's step is checked.
 */
export const REMOVED_APIS: readonly RemovedApi[] = [
  { apiVersion: 'flowcontrol.apiserver.k8s.io/v1beta3', kinds: ['FlowSchema', 'PriorityLevelConfiguration'], removedIn: '1.32', replacement: 'flowcontrol.apiserver.k8s.io/v1' },
  { apiVersion: 'flowcontrol.apiserver.k8s.io/v1beta2', kinds: ['FlowSchema', 'PriorityLevelConfiguration'], removedIn: '1.29', replacement: 'flowcontrol.apiserver.k8s.io/v1' },
  { apiVersion: 'storage.k8s.io/v1beta1', kinds: ['CSIStorageCapacity'], removedIn: '1.27', replacement: 'storage.k8s.io/v1' },
  { apiVersion: 'flowcontrol.apiserver.k8s.io/v1beta1', kinds: ['FlowSchema', 'PriorityLevelConfiguration'], removedIn: '1.26', replacement: 'flowcontrol.apiserver.k8s.io/v1beta3' },
  { apiVersion: 'autoscaling/v2beta2', kinds: ['HorizontalPodAutoscaler'], removedIn: '1.26', replacement: 'autoscaling/v2' },
  { apiVersion: 'batch/v1beta1', kinds: ['CronJob'], removedIn: '1.25', replacement: 'batch/v1' },
  { apiVersion: 'discovery.k8s.io/v1beta1', kinds: ['EndpointSlice'], removedIn: '1.25', replacement: 'discovery.k8s.io/v1' },
  { apiVersion: 'events.k8s.io/v1beta1', kinds: ['Event'], removedIn: '1.25', replacement: 'events.k8s.io/v1' },
  { apiVersion: 'autoscaling/v2beta1', kinds: ['HorizontalPodAutoscaler'], removedIn: '1.25', replacement: 'autoscaling/v2' },
  { apiVersion: 'policy/v1beta1', kinds: ['PodDisruptionBudget'], removedIn: '1.25', replacement: 'policy/v1' },
  { apiVersion: 'policy/v1beta1', kinds: ['PodSecurityPolicy'], removedIn: '1.25', replacement: 'none: Pod Security Admission' },
  { apiVersion: 'node.k8s.io/v1beta1', kinds: ['RuntimeClass'], removedIn: '1.25', replacement: 'node.k8s.io/v1' },
];

/** APIs removed in exactly `target` (the ones removed earlier the installed cluster already refuses). */
export function apisRemovedIn(target: string, table: readonly RemovedApi[] = REMOVED_APIS): RemovedApi[] {
  const t = parseMinor(target);
  return table.filter((r) => { const m = parseMinor(r.removedIn)!; return t && m.major === t.major && m.minor === t.minor; });
}

export interface ManifestFile { path: string; text: string }

/** Every object in the user's manifests whose apiVersion/kind the target stops serving. */
export function checkRemovedApis(files: readonly ManifestFile[], target: string, table: readonly RemovedApi[] = REMOVED_APIS): PrecheckProblem[] {
  const removed = apisRemovedIn(target, table);
  const problems: PrecheckProblem[] = [];
  for (const file of files) {
    const lines = new LineCounter();
    for (const doc of parseAllDocuments(file.text, { lineCounter: lines })) {
      if (doc.errors.length > 0) {
        const at = lines.linePos(doc.errors[0]!.pos[0]);
        problems.push({ check: 'removed-api', message: `${file.path}:${at.line}: not valid YAML (${doc.errors[0]!.code})`, hint: 'fix the manifest so it can be checked' });
        continue;
      }
      const obj = doc.toJS() as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | null;
      if (!obj || typeof obj !== 'object' || typeof obj.apiVersion !== 'string' || typeof obj.kind !== 'string') continue;
      const hit = removed.find((r) => r.apiVersion === obj.apiVersion && r.kinds.includes(obj.kind as string));
      if (!hit) continue;
      const line = doc.contents ? lines.linePos(doc.contents.range[0]).line : 1;
      const ns = typeof obj.metadata?.namespace === 'string' ? `${obj.metadata.namespace}/` : '';
      problems.push({
        check: 'removed-api',
        message: `${file.path}:${line}: ${obj.kind} ${ns}${String(obj.metadata?.name ?? '(unnamed)')} uses ${hit.apiVersion}, which Kubernetes ${hit.removedIn} no longer serves`,
        hint: `change apiVersion to ${hit.replacement}`,
      });
    }
  }
  return problems;
}

export interface ContainerdImage { ref: string; digest: string; labels: Record<string, string> }

/** Parses `ctr -n k8s.io images ls` (REF TYPE DIGEST SIZE PLATFORMS LABELS; SIZE is "12.3 MiB"). */
export function parseCtrImages(output: string): ContainerdImage[] {
  const images: ContainerdImage[] = [];
  for (const line of output.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 3 || cols[0] === '') continue;
    const digest = cols.find((c) => /^sha256:[0-9a-f]{64}$/.test(c));
    if (!digest) continue;
    const labelCol = cols[cols.length - 1]!;
    const labels: Record<string, string> = {};
    if (labelCol !== '-') {
      for (const pair of labelCol.split(',')) {
        const eq = pair.indexOf('=');
        if (eq > 0) labels[pair.slice(0, eq)] = pair.slice(eq + 1);
      }
    }
    images.push({ ref: cols[0]!, digest, labels });
  }
  return images;
}

/** Every image the target needs (ref → locked digest) present in k8s.io with that digest and pinned. */
export function checkImages(needed: Readonly<Record<string, string>>, present: readonly ContainerdImage[]): PrecheckProblem[] {
  const problems: PrecheckProblem[] = [];
  for (const [ref, digest] of Object.entries(needed)) {
    const image = present.find((i) => i.ref === ref);
    if (!image) {
      problems.push({ check: 'images', message: `${ref} is not in containerd's k8s.io namespace`, hint: 'import the target\'s images (staged payload or --artifacts DIR) with `ctr -n k8s.io images import`' });
    } else if (image.digest !== digest) {
      problems.push({ check: 'images', message: `${ref} has digest ${image.digest}, the lock says ${digest}`, hint: 'import the locked image again' });
    } else if (image.labels['io.cri-containerd.pinned'] !== 'pinned') {
      problems.push({ check: 'images', message: `${ref} is not pinned: the kubelet's image GC may delete it`, hint: `ctr -n k8s.io images label ${ref} io.cri-containerd.pinned=pinned` });
    }
  }
  return problems;
}

/** Free bytes on the node's filesystems against what the upgrade unpacks there (debs, images, etcd backup). */
export function checkDiskSpace(free: Readonly<Record<string, number>>, needed: Readonly<Record<string, number>>): PrecheckProblem[] {
  const mib = (n: number) => `${Math.ceil(n / 2 ** 20)} MiB`;
  return Object.entries(needed).flatMap(([mount, bytes]) => {
    const have = free[mount];
    if (have === undefined) return [{ check: 'disk' as const, message: `no free-space figure for ${mount}`, hint: 'gather `df -B1 --output=target,avail` from the node' }];
    return have >= bytes ? [] : [{ check: 'disk' as const, message: `${mount} has ${mib(have)} free, the upgrade needs ${mib(bytes)}`, hint: `free ${mib(bytes - have)} on ${mount} (e.g. crictl rmi --prune of unpinned images) or grow the lab disk` }];
  });
}

export interface UpgradeFacts {
  installedKubernetes: string;
  target: string;
  installedContainerd: string;
  manifests: readonly ManifestFile[];
  neededImages: Readonly<Record<string, string>>;
  containerdImages: readonly ContainerdImage[];
  freeBytes?: Readonly<Record<string, number>>;
  neededBytes?: Readonly<Record<string, number>>;
}

/** All pre-checks at once; an empty list means the upgrade may start. */
export function runPrechecks(facts: UpgradeFacts): PrecheckProblem[] {
  return [
    ...checkVersionSkew(facts.installedKubernetes, facts.target),
    ...checkContainerd(facts.installedContainerd, facts.target),
    ...checkRemovedApis(facts.manifests, facts.target),
    ...checkImages(facts.neededImages, facts.containerdImages),
    ...checkDiskSpace(facts.freeBytes ?? {}, facts.neededBytes ?? {}),
  ];
}
