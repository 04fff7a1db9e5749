/**
 * `image:lock`: refreshes the lock file from the network where it is reachable. Each part
 * (Debian mirror state, the Kubernetes repository, upstream manifests, container image digests)
 * is refreshed on its own; a part that cannot be reached keeps its locked entries and is
 * reported, so a partial refresh never mixes half-read data into the lock.
 */
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { downloadFile, UnreachableError } from '../../core/download.ts';
import { LabError } from '../../core/errors.ts';
import { run } from '../../core/exec.ts';
import { sha256 } from '../../core/hash.ts';
import { skopeoFailure } from '../artifacts/store.ts';
import { clusterImages, renderAddonManifests, workloadImages, UPSTREAM_MANIFESTS, UPSTREAM_MANIFEST_NAMES, type UpstreamManifestName, type UpstreamTexts } from '../../cloud-init/addons/bundle.ts';
import { minimumContainerdFor } from '../../lab/upgrade/prechecks.ts';
import { addonReleasesFor } from '../kubernetes/addon-support.ts';
import { CONTAINERD2_SOURCE, readDebianPackage } from '../kubernetes/containerd2.ts';
import { renderKubeadmConfig } from '../../cloud-init/addons/kubeadm-config.ts';
import type { LabConfig } from '../../config/lab-config.ts';
import { readMirrorState } from '../mirror.ts';
import { aptSources } from '../recipe.ts';
import { selectNewest } from '../kubernetes/apt-index.ts';
import { kubeadmImages, kubeadmImagesForVersion, kubernetesVersionOf } from '../kubernetes/kubeadm.ts';
import { KUBERNETES_KEY_FINGERPRINT, KUBERNETES_PACKAGES, kubernetesRepository, pinnedKeyring, readSignedRepository, releaseKeyUrl, SAME_MINOR_PACKAGES } from '../kubernetes/repository.ts';
import type { ImageLock, LockedImage, TargetSection } from './lock.ts';

export interface RefreshOptions {
  config: LabConfig;
  previous?: ImageLock;
  /** Overrides for tests: the Kubernetes repository and its key fingerprint. */
  kubernetesRepository?: string;
  keyFingerprint?: string;
  /** Refresh only these parts (default: all). */
  parts?: RefreshPart[];
  signal?: AbortSignal;
  onPart?: (part: RefreshPart) => void;
  /** `--kubernetes 1.38`: also lock the next minor in the target section (for the upgrade rehearsal). */
  targetMinor?: string;
  /** Overrides for tests: the target minor's repository (its key fingerprint is keyFingerprint). */
  targetRepository?: string;
  /** Where containerd 2 is read from (default Debian's mirror) and the keyring its InRelease must verify against. */
  containerdMirror?: string;
  containerdKeyring?: string;
}

export type RefreshPart = 'debian' | 'kubernetes' | 'manifests' | 'images' | 'containerd' | 'target';
export const REFRESH_PARTS: RefreshPart[] = ['debian', 'kubernetes', 'manifests', 'images', 'containerd', 'target'];

/** The parts a plain `image:lock` refreshes: containerd when the image or the target needs containerd 2, the target when asked for. */
export function defaultRefreshParts(config: LabConfig, targetMinor?: string): RefreshPart[] {
  const containerd = config.kubernetes.containerd === '2' || (targetMinor !== undefined && needsContainerd2(targetMinor));
  return [...REFRESH_PARTS.slice(0, 4), ...(containerd ? ['containerd' as const] : []), ...(targetMinor ? ['target' as const] : [])];
}

/** Kubernetes 1.38's kubelet refuses containerd 1.x (lab/upgrade/prechecks.ts holds the table). */
export function needsContainerd2(minor: string): boolean {
  return minimumContainerdFor(minor).startsWith('2');
}

export interface RefreshResult {
  lock: ImageLock;
  /** Parts that kept their old entries, with why. */
  skipped: { part: RefreshPart; reason: string }[];
}

/** A lock with nothing resolved yet for this config: what `image:lock` starts from. */
export function emptyLock(config: LabConfig, repository = kubernetesRepository(config.kubernetes.version), fingerprint = KUBERNETES_KEY_FINGERPRINT): ImageLock {
  return {
    lockVersion: 1,
    debian: { suite: config.debian.suite, releases: {} },
    kubernetes: { minor: config.kubernetes.version, repository, keyring: { url: releaseKeyUrl(repository), fingerprint }, packages: {} },
    manifests: Object.fromEntries(UPSTREAM_MANIFEST_NAMES.map((n) => [n, { url: UPSTREAM_MANIFESTS[n] }])),
    images: {},
  };
}

/** The digest of a manifest as the registry serves it, and its linux/amd64 manifest. */
export function parseRawManifest(raw: string): { digest: string; amd64?: string } {
  const digest = `sha256:${sha256(raw)}`;
  const parsed = JSON.parse(raw) as { manifests?: { digest: string; platform?: { os?: string; architecture?: string } }[] };
  if (!parsed.manifests) return { digest, amd64: digest };
  const amd64 = parsed.manifests.find((m) => m.platform?.os === 'linux' && m.platform.architecture === 'amd64')?.digest;
  return { digest, amd64 };
}

/** What a tag resolves to in its registry now (via skopeo: the registry HTTP API with its auth and mirrors). */
export async function inspectImage(ref: string, signal?: AbortSignal): Promise<LockedImage> {
  const result = await run('skopeo', ['inspect', '--raw', '--retry-times', '2', `docker://${ref}`], { signal, allowFailure: true, timeoutMs: 120_000 });
  if (result.exitCode !== 0) throw skopeoFailure(`docker://${ref}`, result.stderr, 'inspect');
  const { digest, amd64 } = parseRawManifest(result.stdout);
  if (!amd64) throw new LabError(`${ref} has no linux/amd64 image`, 'pick a tag that is published for linux/amd64');
  return { digest, amd64 };
}

const CONTROL_PLANE_IMAGES = /^registry\.k8s\.io\/(kube-apiserver|kube-controller-manager|kube-scheduler|kube-proxy):(v[^@]+)$/;

/** Why the lock's control-plane images are not of its kubeadm's Kubernetes version, or undefined (pure). */
export function imagesVersionMismatch(lock: ImageLock): string | undefined {
  const kubeadm = lock.kubernetes.packages.kubeadm;
  if (!kubeadm) return undefined;
  const want = kubernetesVersionOf(kubeadm.version);
  const wrong = Object.keys(lock.images).filter((ref) => {
    const m = CONTROL_PLANE_IMAGES.exec(ref);
    return m && m[2] !== want;
  });
  return wrong.length ? `its images ${wrong.join(', ')} are not of Kubernetes ${want} (kubeadm ${kubeadm.version})` : undefined;
}

export async function refreshLock(opts: RefreshOptions): Promise<RefreshResult> {
  const { config, signal } = opts;
  const repository = opts.kubernetesRepository ?? kubernetesRepository(config.kubernetes.version);
  const fingerprint = opts.keyFingerprint ?? KUBERNETES_KEY_FINGERPRINT;
  const fresh = emptyLock(config, repository, fingerprint);
  const previous = opts.previous;
  // Entries of the previous lock stay where they still describe this config.
  const lock: ImageLock = structuredClone(fresh);
  if (previous && previous.debian.suite === fresh.debian.suite) lock.debian = structuredClone(previous.debian);
  if (previous && previous.kubernetes.minor === fresh.kubernetes.minor && previous.kubernetes.repository === repository) lock.kubernetes = structuredClone(previous.kubernetes);
  for (const name of UPSTREAM_MANIFEST_NAMES) if (previous?.manifests[name]?.url === fresh.manifests[name]!.url) lock.manifests[name] = structuredClone(previous.manifests[name]!);
  if (previous) lock.images = structuredClone(previous.images);
  if (previous?.containerd) lock.containerd = structuredClone(previous.containerd);
  if (previous?.target && (!opts.targetMinor || previous.target.kubernetes.minor === opts.targetMinor)) lock.target = structuredClone(previous.target);

  const skipped: RefreshResult['skipped'] = [];
  const parts = opts.parts ?? defaultRefreshParts(config, opts.targetMinor);
  if (parts.includes('target') && !opts.targetMinor) throw new LabError('the target part needs the minor to lock', 'npm run image:lock -- --kubernetes 1.38', 2);
  const work = await mkdtemp(join(tmpdir(), 'labsmith-lock-'));
  const attemptParts = async (wanted: readonly RefreshPart[], part: RefreshPart, body: () => Promise<void>) => {
    if (!wanted.includes(part)) return;
    opts.onPart?.(part);
    try {
      await body();
    } catch (error) {
      if (!(error instanceof UnreachableError) || signal?.aborted) throw error;
      skipped.push({ part, reason: error.message });
    }
  };
  const attempt = (part: RefreshPart, body: () => Promise<void>) => attemptParts(parts, part, body);
  try {
    await attempt('debian', async () => {
      const sources = aptSources(config.debian);
      const state = await readMirrorState(sources, signal);
      lock.debian = {
        suite: config.debian.suite,
        releases: Object.fromEntries(sources.map((s) => [s.suite, { uri: s.uri, sha256: state.releaseHashes[s.suite]!, date: state.dates[s.suite]! }])),
      };
    });
    const kubeadmBefore = lock.kubernetes.packages.kubeadm?.version;
    await attempt('kubernetes', async () => {
      const keyFile = join(work, 'Release.key');
      const keySha = await downloadFile(fresh.kubernetes.keyring.url, keyFile, { signal });
      await pinnedKeyring(keyFile, fingerprint, join(work, 'keyring.gpg'));
      const repo = await readSignedRepository(repository, join(work, 'keyring.gpg'), fingerprint, { signal });
      const { found, missing } = selectNewest(repo.packages, KUBERNETES_PACKAGES, config.kubernetes.version, SAME_MINOR_PACKAGES);
      if (missing.length) throw new LabError(`${repository} has no ${missing.join(', ')} for Kubernetes ${config.kubernetes.version}`, 'check kubernetes.version in lab.yaml');
      lock.kubernetes = {
        ...fresh.kubernetes,
        keyring: { ...fresh.kubernetes.keyring, sha256: keySha },
        packages: Object.fromEntries(
          Object.entries(found).map(([name, p]) => [name, { version: p.version, url: new URL(p.filename, repository).href, sha256: p.sha256, size: p.size }]),
        ),
      };
    });
    const texts: Partial<UpstreamTexts> = {};
    await attempt('manifests', async () => {
      for (const name of UPSTREAM_MANIFEST_NAMES) {
        const file = join(work, `${name}.yaml`);
        const sum = await downloadFile(UPSTREAM_MANIFESTS[name], file, { signal });
        lock.manifests[name] = { url: UPSTREAM_MANIFESTS[name], sha256: sum };
        texts[name] = await readFile(file, 'utf8');
      }
    });
    // The images belong to kubeadm's version: new packages mean new images, in the same lock.
    const kubeadmMoved = lock.kubernetes.packages.kubeadm?.version !== kubeadmBefore && Object.keys(lock.images).length > 0;
    const imagesPart = parts.includes('images') || kubeadmMoved ? ['images' as const] : [];
    const imagesSkipped = skipped.length;
    await attemptParts(imagesPart, 'images', async () => {
      const kubeadm = lock.kubernetes.packages.kubeadm;
      if (!kubeadm) throw new UnreachableError(fresh.kubernetes.repository, 'the kubeadm package is not locked yet, and its image list comes from kubeadm itself');
      // `--only images`: the manifests as locked, verified by their checksums.
      for (const name of UPSTREAM_MANIFEST_NAMES) {
        if (texts[name] !== undefined) continue;
        const locked = lock.manifests[name];
        if (!locked?.sha256) throw new UnreachableError(locked?.url ?? UPSTREAM_MANIFESTS[name], `manifests.${name} is not locked yet, and the image list comes from it`);
        const file = join(work, `${name}.yaml`);
        await downloadFile(locked.url, file, { sha256: locked.sha256, signal });
        texts[name] = await readFile(file, 'utf8');
      }
      const deb = join(work, 'kubeadm.deb');
      await downloadFile(kubeadm.url, deb, { sha256: kubeadm.sha256, signal });
      const kubeadmConfig = renderKubeadmConfig(config, { kubernetesVersion: kubernetesVersionOf(kubeadm.version), advertiseAddress: '10.0.2.15', certSANs: [] });
      const refs = clusterImages(await kubeadmImages(deb, kubeadmConfig, signal), renderAddonManifests(config, texts as UpstreamTexts), workloadImages(config));
      const images: ImageLock['images'] = {};
      for (const ref of refs) images[ref] = await inspectImage(ref, signal);
      lock.images = images;
    });
    if (kubeadmMoved && skipped.length > imagesSkipped) {
      throw new LabError(
        `the lock was not written: kubeadm moved from ${kubeadmBefore ?? 'nothing'} to ${lock.kubernetes.packages.kubeadm?.version ?? 'nothing'}, but the container images could not be refreshed (${skipped.at(-1)!.reason}), and the locked ones belong to the old version`,
        'run `npm run image:lock` where the registries and the upstream manifests are reachable, or `--only debian` to refresh the Debian part alone',
      );
    }
    await attempt('containerd', async () => {
      const { suite, component, package: name, major } = CONTAINERD2_SOURCE;
      lock.containerd = await readDebianPackage({ mirror: opts.containerdMirror ?? config.debian.mirror, suite, component, name, versionPrefix: `${major}.`, keyring: opts.containerdKeyring }, { signal });
    });
    if (opts.targetMinor && parts.includes('target')) await refreshTarget(lock, opts, work, (body) => attempt('target', body));
    const mismatch = imagesVersionMismatch(lock);
    if (mismatch) throw new LabError(`the lock was not written: ${mismatch}`, 'run `npm run image:lock -- --only kubernetes,images` where the registries are reachable');
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return { lock, skipped };
}

/**
 * The target section, in three parts that fail on their own: the target minor's packages
 * (pkgs.k8s.io, signed), its add-on manifests (by sha256), and the images (kubeadm of the target
 * package for `--kubernetes-version`, plus the add-ons', by digest). What cannot be reached keeps
 * the previous target entries and is named.
 */
async function refreshTarget(lock: ImageLock, opts: RefreshOptions, work: string, attempt: (body: () => Promise<void>) => Promise<void>): Promise<void> {
  const minor = opts.targetMinor!;
  const { config, signal } = opts;
  const repository = opts.targetRepository ?? kubernetesRepository(minor);
  const fingerprint = opts.keyFingerprint ?? KUBERNETES_KEY_FINGERPRINT;
  const target: TargetSection = lock.target ?? {
    kubernetes: { minor, repository, keyring: { url: releaseKeyUrl(repository), fingerprint }, packages: {} },
    images: {},
    manifests: Object.fromEntries(addonReleasesFor(minor).filter((a) => a.manifestUrl).map((a) => [a.name, { url: a.manifestUrl! }])),
  };
  lock.target = target;
  const kubeadmBefore = target.kubernetes.packages.kubeadm?.version;
  const dir = join(work, 'target');
  await mkdir(dir, { recursive: true });
  await attempt(async () => {
    const keyFile = join(dir, 'Release.key');
    const keySha = await downloadFile(releaseKeyUrl(repository), keyFile, { signal });
    await pinnedKeyring(keyFile, fingerprint, join(dir, 'keyring.gpg'));
    const repo = await readSignedRepository(repository, join(dir, 'keyring.gpg'), fingerprint, { signal });
    const { found, missing } = selectNewest(repo.packages, KUBERNETES_PACKAGES, minor, SAME_MINOR_PACKAGES);
    if (missing.length) throw new LabError(`${repository} has no ${missing.join(', ')} for Kubernetes ${minor}`, `is ${minor} released? pkgs.k8s.io has one repository per minor`);
    target.kubernetes = {
      minor, repository, keyring: { url: releaseKeyUrl(repository), fingerprint, sha256: keySha },
      packages: Object.fromEntries(Object.entries(found).map(([name, p]) => [name, { version: p.version, url: new URL(p.filename, repository).href, sha256: p.sha256, size: p.size }])),
    };
  });
  if (needsContainerd2(minor)) {
    if (lock.containerd) target.containerd = structuredClone(lock.containerd);
    else await attempt(async () => { throw new UnreachableError(config.debian.mirror, `Kubernetes ${minor} needs containerd 2 and the containerd part is not locked (run with --only containerd,target or without --only)`); });
  }
  const texts: Partial<UpstreamTexts> = {};
  await attempt(async () => {
    for (const addon of addonReleasesFor(minor)) {
      if (!addon.manifestUrl) continue;
      const file = join(dir, `${addon.name}.yaml`);
      target.manifests[addon.name] = { url: addon.manifestUrl, sha256: await downloadFile(addon.manifestUrl, file, { signal }) };
      texts[addon.name as UpstreamManifestName] = await readFile(file, 'utf8');
    }
  });
  await attempt(async () => {
    const kubeadm = target.kubernetes.packages.kubeadm;
    if (!kubeadm) throw new UnreachableError(repository, `the target kubeadm is not locked, and kubeadm's image list for ${minor} comes from kubeadm itself`);
    const missingText = UPSTREAM_MANIFEST_NAMES.filter((n) => texts[n] === undefined);
    if (missingText.length) throw new UnreachableError(target.manifests[missingText[0]!]?.url ?? missingText[0]!, `the target's add-on manifests (${missingText.join(', ')}) could not be read, and their images come from them`);
    const deb = join(dir, 'kubeadm.deb');
    await downloadFile(kubeadm.url, deb, { sha256: kubeadm.sha256, signal });
    const refs = clusterImages(await kubeadmImagesForVersion(deb, kubernetesVersionOf(kubeadm.version), signal), renderAddonManifests(config, texts as UpstreamTexts));
    const images: ImageLock['images'] = {};
    for (const ref of refs) images[ref] = await inspectImage(ref, signal);
    target.images = images;
  });
  // Images of another kubeadm would be staged as if they were this one's: better none (staging then names them).
  if (target.kubernetes.packages.kubeadm?.version !== kubeadmBefore && Object.keys(target.images).length && !Object.keys(target.images).some((r) => r.endsWith(`:${kubernetesVersionOf(target.kubernetes.packages.kubeadm!.version)}`))) target.images = {};
}
