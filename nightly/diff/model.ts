/**
 * The image diff as one data model: what changed between two nights (or two image manifests).
 * `planImageDiff` is pure: everything it needs (manifests, locks, package origins, acceptance
 * verdicts, timings, the new .debs' changelogs) is read beforehand by load.ts. The Markdown and
 * JSON renderers only format this model.
 */
import type { ImageManifest } from '../../images/manifest.ts';
import { diffImageLocks, type ImageLock } from '../../images/lock/lock.ts';
import { advisoryIds, changelogEntriesBetween, type ChangelogEntry } from './changelog.ts';
import { compareDebianVersions } from '../../core/debian-version.ts';

/** One installed binary package with where it came from. */
export interface PackageRecord {
  name: string;
  version: string;
  architecture: string;
  /** Its source package and that source's version (dpkg's `Source:`, else the package itself). */
  source: string;
  sourceVersion: string;
  /** The locked suite whose index lists this exact version (`trixie-security`, …), when known. */
  suite?: string;
}

/** The acceptance verdict of a night. */
export interface NightVerdict {
  green: boolean;
  passed: number;
  total: number;
  /** Checks that cannot apply to this image (cluster checks on an OS-only image). */
  notApplicable: number;
  /** What failed: check names, or the step that stopped the night. */
  failed: string[];
  osOnly: boolean;
}

export interface NightTimings {
  /** Image build step → seconds (what this night actually spent: cached layers are quick). */
  buildSeconds: Record<string, number>;
  /** Boot figures: bootToSsh, bootToCloudInit (seconds). */
  bootSeconds: Record<string, number>;
}

/** Everything the diff reads about one side. */
export interface NightRecord {
  /** The night directory's name, or the manifest's path. */
  name: string;
  manifest: ImageManifest;
  packages: PackageRecord[];
  lock?: ImageLock;
  verdict?: NightVerdict;
  timings?: NightTimings;
}

export type ChangeKind = 'upgraded' | 'downgraded' | 'added' | 'removed';

export interface BinaryChange {
  name: string;
  kind: ChangeKind;
  old?: string;
  new?: string;
}

export interface SourceChange {
  source: string;
  old?: string;
  new?: string;
  kind: ChangeKind;
  binaries: BinaryChange[];
  /** The new version came from the security suite. */
  security: boolean;
}

export interface SecurityUpdate {
  source: string;
  old?: string;
  new: string;
  suite: string;
  binaries: string[];
  cves: string[];
  advisories: string[];
  entries: ChangelogEntry[];
  /** Why no entries are shown, when the changelog could not be read. */
  changelogMissing?: string;
}

export interface PinnedMajor {
  component: string;
  package?: string;
  old?: string;
  new?: string;
  changed: boolean;
}

export interface ImageChange {
  ref: string;
  kind: 'added' | 'removed' | 'changed' | 'index-only';
  old?: { digest: string; amd64: string };
  new?: { digest: string; amd64: string };
}

export interface ManifestChange {
  name: string;
  kind: 'added' | 'removed' | 'changed';
  old?: { url: string; sha256?: string };
  new?: { url: string; sha256?: string };
}

export interface Figure {
  name: string;
  old?: number;
  new?: number;
  delta?: number;
  /** false when the difference is within the noise threshold. */
  significant: boolean;
}

/** What identifies the image itself: a changed build time or layer rebuilds it even with the same packages. */
export interface ImageIdentityChange {
  field: 'inputsHash' | 'sourceDateEpoch' | 'compressed sha256';
  old?: string;
  new?: string;
}

export interface ImageDiff {
  old: string;
  new: string;
  /** Image identity fields that changed. */
  identity: ImageIdentityChange[];
  headline: {
    result?: NightVerdict;
    upgraded: number;
    added: number;
    removed: number;
    downgraded: number;
    securityUpdates: number;
    compressedBytes?: Figure;
    buildSeconds?: Figure;
    bootSeconds?: Figure;
    /** Nothing in the image changed (same inputs hash). */
    identicalImage: boolean;
  };
  pinned: PinnedMajor[];
  security: SecurityUpdate[];
  packages: SourceChange[];
  images: ImageChange[];
  manifests: ManifestChange[];
  lockChanges: string[];
  sizes: Figure[];
  buildTimes: Figure[];
  bootTimes: Figure[];
  notes: string[];
}

/** Components named first, in this order: a package name or a pattern for its versioned name. */
export const PINNED_MAJORS: { component: string; match: RegExp }[] = [
  { component: 'kernel', match: /^linux-image-\d/ },
  { component: 'systemd', match: /^systemd$/ },
  { component: 'containerd', match: /^containerd(\.io)?$/ },
  { component: 'runc', match: /^runc$/ },
  { component: 'docker.io', match: /^docker\.io$/ },
  { component: 'kubelet', match: /^kubelet$/ },
  { component: 'kubeadm', match: /^kubeadm$/ },
  { component: 'kubectl', match: /^kubectl$/ },
  { component: 'cri-tools', match: /^cri-tools$/ },
  { component: 'kubernetes-cni', match: /^kubernetes-cni$/ },
  { component: 'cloud-init', match: /^cloud-init$/ },
  { component: 'openssh', match: /^openssh-server$/ },
];

/**
 * Noise thresholds: a difference counts only above both the absolute and the relative bound.
 * Compressed images wobble by a few KiB from metadata order; shared-CPU timings by 10-20 %.
 */
export const THRESHOLDS = {
  bytes: { absolute: 1024 * 1024, relative: 0.01 },
  seconds: { absolute: 10, relative: 0.2 },
} as const;

export interface DiffInputs {
  old: NightRecord;
  new: NightRecord;
  /** Source package → the entries of its new .deb's changelog (or why it could not be read). */
  changelogs: Record<string, ChangelogEntry[] | { missing: string }>;
}

export function figure(name: string, old: number | undefined, now: number | undefined, threshold: { absolute: number; relative: number }): Figure {
  if (old === undefined || now === undefined) return { name, old, new: now, significant: false };
  const delta = now - old;
  const significant = Math.abs(delta) > threshold.absolute && Math.abs(delta) > threshold.relative * Math.max(Math.abs(old), 1);
  return { name, old, new: now, delta, significant };
}

function kindOf(old: string | undefined, now: string | undefined): ChangeKind | undefined {
  if (old === undefined) return now === undefined ? undefined : 'added';
  if (now === undefined) return 'removed';
  const c = compareDebianVersions(old, now);
  return c < 0 ? 'upgraded' : c > 0 ? 'downgraded' : undefined;
}

/** Binary changes grouped by source package (a source's binaries are shown once, under it). */
export function diffPackages(old: PackageRecord[], now: PackageRecord[], securitySuite: string): SourceChange[] {
  const key = (p: PackageRecord) => `${p.name}:${p.architecture}`;
  const before = new Map(old.map((p) => [key(p), p]));
  const after = new Map(now.map((p) => [key(p), p]));
  const groups = new Map<string, SourceChange>();
  for (const k of [...new Set([...before.keys(), ...after.keys()])].sort()) {
    const a = before.get(k);
    const b = after.get(k);
    const kind = kindOf(a?.version, b?.version);
    if (!kind) continue;
    const source = (b ?? a)!.source;
    const group = groups.get(source) ?? { source, kind, binaries: [], security: false, old: undefined, new: undefined };
    group.binaries.push({ name: (b ?? a)!.name, kind, old: a?.version, new: b?.version });
    if (a && (!group.old || compareDebianVersions(a.sourceVersion, group.old) > 0)) group.old = a.sourceVersion;
    if (b && (!group.new || compareDebianVersions(b.sourceVersion, group.new) > 0)) group.new = b.sourceVersion;
    if (b?.suite === securitySuite && kind !== 'removed') group.security = true;
    groups.set(source, group);
  }
  for (const g of groups.values()) {
    // The source's kind follows its versions; a source whose binaries only came or went keeps that.
    g.kind = kindOf(g.old, g.new) ?? (g.binaries.every((b) => b.kind === 'added') ? 'added' : g.binaries.every((b) => b.kind === 'removed') ? 'removed' : 'upgraded');
  }
  return [...groups.values()].sort((a, b) => (a.source < b.source ? -1 : a.source > b.source ? 1 : 0));
}

function pinnedMajors(old: PackageRecord[], now: PackageRecord[]): PinnedMajor[] {
  const newest = (list: PackageRecord[], match: RegExp) =>
    list.filter((p) => match.test(p.name)).sort((a, b) => compareDebianVersions(b.version, a.version))[0];
  return PINNED_MAJORS.flatMap(({ component, match }) => {
    const a = newest(old, match);
    const b = newest(now, match);
    if (!a && !b) return [];
    const label = (p?: PackageRecord) => (p ? (component === 'kernel' ? `${p.name} ${p.version}` : p.version) : undefined);
    return [{ component, package: (b ?? a)!.name, old: label(a), new: label(b), changed: label(a) !== label(b) }];
  });
}

function diffImages(old: ImageLock | undefined, now: ImageLock | undefined): ImageChange[] {
  const a = old?.images ?? {};
  const b = now?.images ?? {};
  const out: ImageChange[] = [];
  for (const ref of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    const x = a[ref];
    const y = b[ref];
    if (!x) out.push({ ref, kind: 'added', new: y });
    else if (!y) out.push({ ref, kind: 'removed', old: x });
    else if (x.amd64 !== y.amd64) out.push({ ref, kind: 'changed', old: x, new: y });
    // A re-pushed index (another platform changed) with the same linux/amd64 manifest: the image we copy is the same.
    else if (x.digest !== y.digest) out.push({ ref, kind: 'index-only', old: x, new: y });
  }
  return out;
}

function diffManifests(old: ImageLock | undefined, now: ImageLock | undefined): ManifestChange[] {
  const a = old?.manifests ?? {};
  const b = now?.manifests ?? {};
  const out: ManifestChange[] = [];
  for (const name of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    const x = a[name];
    const y = b[name];
    if (!x) out.push({ name, kind: 'added', new: y });
    else if (!y) out.push({ name, kind: 'removed', old: x });
    else if (x.url !== y.url || x.sha256 !== y.sha256) out.push({ name, kind: 'changed', old: x, new: y });
  }
  return out;
}

/** Lock lines the sections above do not already show (mirror state, repository, key, …). */
function otherLockChanges(old: ImageLock | undefined, now: ImageLock | undefined, shownPackages: Set<string>): string[] {
  // Without a baseline lock every line would be "added": the sections above already show what matters.
  if (!now || !old) return [];
  return diffImageLocks(old, now).filter((line) => {
    const path = line.replace(/^[+~-] /, '').split(/[ :]/)[0]!;
    if (path.startsWith('images.') || path.startsWith('manifests.')) return false;
    const pkg = /^kubernetes\.packages\.([^.]+)\./.exec(path)?.[1];
    return !(pkg && shownPackages.has(pkg));
  });
}

const sum = (r: Record<string, number> | undefined) => (r ? Object.values(r).reduce((s, x) => s + x, 0) : undefined);

export function planImageDiff(inputs: DiffInputs): ImageDiff {
  const { old, new: now } = inputs;
  const securitySuite = `${now.manifest.suite}-security`;
  const packages = diffPackages(old.packages, now.packages, securitySuite);
  const security: SecurityUpdate[] = packages
    .filter((g) => g.security && g.new)
    .map((g) => {
      const log = inputs.changelogs[g.source];
      const entries = log && Array.isArray(log) ? changelogEntriesBetween(log, g.old, g.new!) : [];
      const ids = advisoryIds(entries);
      return {
        source: g.source,
        old: g.old,
        new: g.new!,
        suite: securitySuite,
        binaries: g.binaries.filter((b) => b.kind !== 'removed').map((b) => b.name),
        ...ids,
        entries,
        ...(log === undefined ? { changelogMissing: 'no changelog was read for it' } : !Array.isArray(log) ? { changelogMissing: log.missing } : {}),
      };
    });
  const binaryCounts = (kind: ChangeKind) => packages.reduce((n, g) => n + g.binaries.filter((b) => b.kind === kind).length, 0);
  const fileBytes = (r: NightRecord, name: string) => Object.entries(r.manifest.files).find(([f]) => f === name)?.[1].bytes;
  const sizes = [
    figure('raw', old.manifest.rawBytes, now.manifest.rawBytes, THRESHOLDS.bytes),
    figure('qcow2', fileBytes(old, 'disk.qcow2'), fileBytes(now, 'disk.qcow2'), THRESHOLDS.bytes),
    figure('compressed', fileBytes(old, 'disk-compressed.qcow2'), fileBytes(now, 'disk-compressed.qcow2'), THRESHOLDS.bytes),
  ];
  const stepNames = (a?: Record<string, number>, b?: Record<string, number>) => [...new Set([...Object.keys(a ?? {}), ...Object.keys(b ?? {})])];
  const buildTimes = stepNames(old.timings?.buildSeconds, now.timings?.buildSeconds).map((s) => figure(s, old.timings?.buildSeconds[s], now.timings?.buildSeconds[s], THRESHOLDS.seconds));
  const bootTimes = stepNames(old.timings?.bootSeconds, now.timings?.bootSeconds).map((s) => figure(s, old.timings?.bootSeconds[s], now.timings?.bootSeconds[s], THRESHOLDS.seconds));
  const notes: string[] = [];
  if (now.verdict?.osOnly) notes.push('OS-only night: the lock has no Kubernetes packages, so the image has no Kubernetes layer and the cluster checks do not apply (counted as not applicable).');
  if (!now.lock || !old.lock) notes.push('a side has no lock file: container images, manifests and lock changes are not compared.');
  if (!now.packages.some((p) => p.suite)) notes.push('the new side has no package origins (a bare manifest): security updates cannot be told apart.');
  const shownPackages = new Set(packages.flatMap((g) => g.binaries.map((b) => b.name)));
  const compressedSha = (r: NightRecord) => r.manifest.files['disk-compressed.qcow2']?.sha256;
  const identity = ([
    ['inputsHash', old.manifest.inputsHash || undefined, now.manifest.inputsHash || undefined],
    ['sourceDateEpoch', old.manifest.sourceDateEpoch ? String(old.manifest.sourceDateEpoch) : undefined, now.manifest.sourceDateEpoch ? String(now.manifest.sourceDateEpoch) : undefined],
    ['compressed sha256', compressedSha(old), compressedSha(now)],
  ] as const)
    .filter(([, a, b]) => a !== b)
    .map(([field, a, b]) => ({ field, old: a, new: b }));
  return {
    old: old.name,
    new: now.name,
    identity,
    headline: {
      result: now.verdict,
      upgraded: binaryCounts('upgraded'),
      added: binaryCounts('added'),
      removed: binaryCounts('removed'),
      downgraded: binaryCounts('downgraded'),
      securityUpdates: security.length,
      compressedBytes: sizes[2],
      buildSeconds: old.timings && now.timings ? figure('build', sum(old.timings.buildSeconds), sum(now.timings.buildSeconds), THRESHOLDS.seconds) : undefined,
      bootSeconds: old.timings && now.timings ? figure('boot → cloud-init', old.timings.bootSeconds.bootToCloudInit, now.timings.bootSeconds.bootToCloudInit, THRESHOLDS.seconds) : undefined,
      identicalImage: old.manifest.inputsHash === now.manifest.inputsHash,
    },
    pinned: pinnedMajors(old.packages, now.packages),
    security,
    packages,
    images: diffImages(old.lock, now.lock),
    manifests: diffManifests(old.lock, now.lock),
    lockChanges: otherLockChanges(old.lock, now.lock, shownPackages),
    sizes,
    buildTimes,
    bootTimes,
    notes,
  };
}
