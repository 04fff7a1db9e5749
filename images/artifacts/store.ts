/**
 * The locked inputs as local files: the Kubernetes key, the .deb packages, the upstream
 * manifests and one OCI archive per container image. Each comes from an artifacts directory
 * (`--artifacts DIR`, offline builds and restores), else the download cache, else the network,
 * and is verified against the lock before use. The first input that cannot be had stops the
 * build with its URL and what to do.
 */
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ChecksumError, downloadFile, UnreachableError } from '../../core/download.ts';
import { LabError } from '../../core/errors.ts';
import { run } from '../../core/exec.ts';
import { sha256File } from '../../core/hash.ts';
import { readTar } from '../../core/tar.ts';
import type { ImageLock, LockedImage } from '../lock/lock.ts';
import { artifactFileName, imageArchiveName } from './names.ts';

export const ARTIFACT_DIRS = { files: 'files', images: 'images' } as const;

export { artifactFileName, imageArchiveName };

/** `registry/name:tag` → `registry/name` */
export function imageRepository(ref: string): string {
  const at = ref.indexOf('@');
  if (at >= 0) return ref.slice(0, at);
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  return colon > slash ? ref.slice(0, colon) : ref;
}

export interface ResolvedInputs {
  keyring: string;
  debs: Record<string, string>;
  manifests: Record<string, string>;
  images: Record<string, string>;
}

export interface ResolveOptions {
  /** Read-only directory with the locked files (`--artifacts`); nothing is downloaded when given. */
  artifactsDir?: string;
  /** Where downloads are kept (the cache, or `image:fetch-artifacts --out`). */
  storeDir: string;
  signal?: AbortSignal;
  onItem?: (what: string) => void;
}

const OFFLINE_HINT =
  'build where it is reachable, or fill a directory on a machine that reaches it with `npm run image:fetch-artifacts -- --out DIR` and build with `--artifacts DIR`';

function missingFromLock(field: string): LabError {
  return new LabError(
    `the lock file has no ${field}`,
    'run `npm run image:lock` where pkgs.k8s.io, GitHub and the registries are reachable (it prints what it adds), then `npm run image:fetch-artifacts -- --out DIR` there to build here offline with --artifacts DIR; or build an OS-only image with --os-only',
  );
}

/** What to resolve: the Kubernetes packages, upstream manifests and (optionally) every locked image. */
export interface InputSelection {
  packages: readonly string[];
  manifests: readonly string[];
  images: boolean;
  /** The lock's pinned containerd 2 .deb (kubernetes.containerd: "2"), resolved as debs.containerd. */
  containerd?: boolean;
  /** The lock's target section for this minor (staged upgrade payload), resolved under `target/<name or ref>`. */
  target?: string;
}

/** Every entry the selection needs must be in the lock before anything is fetched. */
export function checkLockComplete(lock: ImageLock, want: InputSelection): void {
  if (!lock.kubernetes.keyring.sha256) throw missingFromLock(`kubernetes.keyring.sha256 (${lock.kubernetes.keyring.url})`);
  for (const p of want.packages) if (!lock.kubernetes.packages[p]) throw missingFromLock(`kubernetes.packages.${p}`);
  for (const m of want.manifests) {
    if (!lock.manifests[m]) throw missingFromLock(`manifests.${m}`);
    if (!lock.manifests[m]!.sha256) throw missingFromLock(`manifests.${m}.sha256 (${lock.manifests[m]!.url})`);
  }
  if (want.images && Object.keys(lock.images).length === 0) throw missingFromLock('images (container images by digest)');
}

/** How to (re)fill an artifacts directory: an input archive's lock view names its archive. */
function refillHint(artifactsDir: string, needs?: string): string {
  const archive = /^(.*)\/locks\/[0-9a-f]{16}$/.exec(artifactsDir)?.[1] ?? artifactsDir;
  return `archive a Kubernetes build of this lock into it with \`npm run image:archive -- --out ${archive}\` (image:fetch-artifacts is the same)${needs ? ` (it needs ${needs})` : ''}`;
}

async function resolveFile(what: string, url: string, sha256: string, opts: ResolveOptions): Promise<string> {
  const name = artifactFileName(url);
  if (opts.artifactsDir) {
    const path = join(opts.artifactsDir, ARTIFACT_DIRS.files, name);
    if (!existsSync(path)) throw new LabError(`${what}: ${path} is missing from the artifacts directory`, refillHint(opts.artifactsDir, url));
    const actual = await sha256File(path);
    if (actual !== sha256) throw new ChecksumError(`${what} (${path})`, sha256, actual, 'the artifacts directory does not match the lock: refill it with image:fetch-artifacts');
    return path;
  }
  const cached = await cachedLockedFile(url, sha256, opts.storeDir);
  if (cached) return cached;
  const path = join(opts.storeDir, ARTIFACT_DIRS.files, name);
  opts.onItem?.(`downloading ${url}`);
  try {
    await downloadFile(url, path, { sha256, signal: opts.signal });
  } catch (error) {
    if (error instanceof UnreachableError) throw new UnreachableError(url, `${error.reason} (needed for ${what})`, OFFLINE_HINT);
    throw error;
  }
  return path;
}

/** A locked file already in the store with the locked checksum, else undefined (no network). */
export async function cachedLockedFile(url: string, sha256: string | undefined, storeDir: string): Promise<string | undefined> {
  const path = join(storeDir, ARTIFACT_DIRS.files, artifactFileName(url));
  return sha256 && existsSync(path) && (await sha256File(path)) === sha256 ? path : undefined;
}

/** The manifest digest an OCI archive's index points at. */
export async function ociArchiveDigest(archive: string): Promise<string | undefined> {
  const entries = await readTar(archive, { readContent: (p) => p === 'index.json' || p === './index.json' });
  const index = entries.find((e) => e.content && /^(\.\/)?index\.json$/.test(e.path))?.content;
  if (!index) return undefined;
  const parsed = JSON.parse(index.toString('utf8')) as { manifests?: { digest?: string }[] };
  return parsed.manifests?.[0]?.digest;
}

const UNREACHABLE_PATTERNS = /dial tcp|no such host|connection refused|i\/o timeout|network is unreachable|TLS handshake timeout|server misbehaving|Temporary failure in name resolution/i;

/** A failed skopeo call: an unreachable registry (build elsewhere or offline), or a problem with the reference itself. */
export function skopeoFailure(source: string, stderr: string, doing: string): LabError {
  const detail = stderr.trim().split('\n').pop() ?? '';
  if (UNREACHABLE_PATTERNS.test(stderr)) return new UnreachableError(source, detail, OFFLINE_HINT);
  // Your own registry (lab.yaml registries:) as this host's skopeo sees it: containers' own CA and auth files, not lab.yaml's.
  const registry = source.replace(/^docker:\/\//, '').split('/')[0]!;
  if (/x509|certificate signed by unknown authority|tls: failed to verify/i.test(stderr)) {
    return new LabError(`skopeo could not ${doing} ${source}: ${detail}`, `this host does not trust ${registry}'s certificate: put its CA in /etc/containers/certs.d/${registry}/ca.crt (skopeo's own place; lab.yaml registries: is for the guest)`);
  }
  if (/unauthorized|authentication required|401/i.test(stderr)) {
    return new LabError(`skopeo could not ${doing} ${source}: ${detail}`, `${registry} wants credentials on this host: \`skopeo login ${registry}\` (or REGISTRY_AUTH_FILE); lab.yaml registries: credentials are for the guest's kubelet`);
  }
  return new LabError(`skopeo could not ${doing} ${source}: ${detail}`, 'check the image reference and digest in the lock file (`npm run image:lock` refreshes them)');
}

/** skopeo copies exactly the locked linux/amd64 manifest into an OCI archive named by its tag. */
export async function fetchImageArchive(ref: string, image: LockedImage, dest: string, signal?: AbortSignal): Promise<void> {
  const source = `docker://${imageRepository(ref)}@${image.amd64}`;
  const tmp = `${dest}.part`;
  await rm(tmp, { force: true });
  await mkdir(join(dest, '..'), { recursive: true });
  const result = await run('skopeo', ['copy', '--retry-times', '2', '--override-os', 'linux', '--override-arch', 'amd64', source, `oci-archive:${tmp}:${ref}`], { signal, allowFailure: true, timeoutMs: 30 * 60_000 });
  if (result.exitCode !== 0) {
    await rm(tmp, { force: true });
    throw skopeoFailure(source, result.stderr, 'copy');
  }
  await rename(tmp, dest);
}

async function resolveImage(ref: string, image: LockedImage, opts: ResolveOptions): Promise<string> {
  const name = imageArchiveName(ref);
  const fromDir = opts.artifactsDir ? join(opts.artifactsDir, ARTIFACT_DIRS.images, name) : undefined;
  const path = fromDir ?? join(opts.storeDir, ARTIFACT_DIRS.images, name);
  if (fromDir && !existsSync(fromDir)) {
    throw new LabError(`image ${ref}: ${fromDir} is missing from the artifacts directory`, refillHint(opts.artifactsDir!));
  }
  if (!fromDir && !existsSync(path)) {
    opts.onItem?.(`copying ${ref}`);
    await fetchImageArchive(ref, image, path, opts.signal);
  }
  const digest = await ociArchiveDigest(path);
  if (digest !== image.amd64) {
    if (!fromDir) await rm(path, { force: true });
    throw new LabError(`image ${ref}: ${path} holds ${digest ?? 'no index'}, not the locked ${image.amd64}`, fromDir ? 'refill the artifacts directory with image:fetch-artifacts' : 'the cached copy was removed: build again');
  }
  return path;
}

/** Every locked input as a verified local file, in lock order; stops at the first it cannot have. */
export async function resolveLockedInputs(lock: ImageLock, want: InputSelection, opts: ResolveOptions): Promise<ResolvedInputs> {
  checkLockComplete(lock, want);
  const { packages, manifests } = want;
  const { keyring } = lock.kubernetes;
  const resolved: ResolvedInputs = { keyring: await resolveFile('the Kubernetes apt key', keyring.url, keyring.sha256!, opts), debs: {}, manifests: {}, images: {} };
  for (const p of packages) {
    const pkg = lock.kubernetes.packages[p]!;
    resolved.debs[p] = await resolveFile(`package ${p} ${pkg.version}`, pkg.url, pkg.sha256, opts);
  }
  for (const m of manifests) resolved.manifests[m] = await resolveFile(`manifest ${m}`, lock.manifests[m]!.url, lock.manifests[m]!.sha256!, opts);
  if (want.containerd) {
    if (!lock.containerd) throw missingFromLock('containerd (Debian forky\'s containerd 2: `npm run image:lock -- --only containerd`)');
    resolved.debs[lock.containerd.name] = await resolveFile(`package ${lock.containerd.name} ${lock.containerd.version} (${lock.containerd.suite})`, lock.containerd.url, lock.containerd.sha256, opts);
  }
  if (want.images) for (const [ref, image] of Object.entries(lock.images).sort(([a], [b]) => (a < b ? -1 : 1))) resolved.images[ref] = await resolveImage(ref, image, opts);
  if (want.target) Object.assign(resolved, mergeResolved(resolved, await resolveTargetInputs(lock, want.target, opts)));
  return resolved;
}

function mergeResolved(a: ResolvedInputs, b: Pick<ResolvedInputs, 'debs' | 'images'>): ResolvedInputs {
  return { ...a, debs: { ...a.debs, ...b.debs }, images: { ...a.images, ...b.images } };
}

/**
 * The target section's .debs and image archives (keys `target/<name>`, `target/<ref>`). Every
 * input is tried, and all that cannot be had are named at once: a staged payload is all or nothing.
 */
export async function resolveTargetInputs(lock: ImageLock, minor: string, opts: ResolveOptions): Promise<Pick<ResolvedInputs, 'debs' | 'images'>> {
  const target = lock.target;
  if (!target || target.kubernetes.minor !== minor) throw missingFromLock(`target section for Kubernetes ${minor} (\`npm run image:lock -- --kubernetes ${minor}\`)`);
  const out: Pick<ResolvedInputs, 'debs' | 'images'> = { debs: {}, images: {} };
  const failed: string[] = [];
  const attempt = async (body: () => Promise<void>) => {
    try {
      await body();
    } catch (error) {
      if (!(error instanceof LabError) || opts.signal?.aborted) throw error;
      failed.push(error.message);
    }
  };
  const debs = Object.entries(target.kubernetes.packages).map(([name, p]) => ({ name, ...p, what: `target package ${name} ${p.version}` }));
  if (target.containerd) debs.push({ ...target.containerd, what: `target package ${target.containerd.name} ${target.containerd.version} (${target.containerd.suite})` });
  for (const d of debs) await attempt(async () => { out.debs[`target/${d.name}`] = await resolveFile(d.what, d.url, d.sha256, opts); });
  for (const [ref, image] of Object.entries(target.images).sort(([a], [b]) => (a < b ? -1 : 1))) await attempt(async () => { out.images[`target/${ref}`] = await resolveImage(ref, image, opts); });
  if (failed.length) {
    throw new LabError(
      `the Kubernetes ${minor} upgrade payload is incomplete: ${failed.length} input(s) could not be had:\n${failed.map((f) => `  - ${f}`).join('\n')}`,
      opts.artifactsDir ? refillHint(opts.artifactsDir) : OFFLINE_HINT,
    );
  }
  return out;
}
