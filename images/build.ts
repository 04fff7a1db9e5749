/**
 * `image:build`: plans every content-addressed layer once, from the lock (checked against the
 * mirror first), then builds the ones not cached by executing their plans: tools (disk tools
 * chroot), rootfs (mmdebstrap tarball, hygiene-checked), Kubernetes (the same with the locked
 * packages, keyring and image archives) and disk (qcow2 + compressed qcow2 + SHA256SUMS +
 * manifest.json + stamp). Nothing is planned again after a step has run.
 */
import { existsSync } from 'node:fs';
import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { LabError } from '../core/errors.ts';
import { ensureWritableDir } from '../core/fs.ts';
import { sha256File } from '../core/hash.ts';
import { cacheRoot, IMAGE_FILES } from '../core/paths.ts';
import type { Progress } from '../core/progress.ts';
import { runSteps, type Step, type StepTiming } from '../core/steps.ts';
import { readTar } from '../core/tar.ts';
import { requireHostTools, requireRoot } from '../core/host-tools.ts';
import { buildDisk, type BuiltDisk } from './disk.ts';
import { checkImageHygiene, HYGIENE_CONTENT_PATHS } from './hygiene.ts';
import { ensureLayer } from './layer-cache.ts';
import { parseDpkgStatus, parseSha256Sums, renderSha256Sums, type ImageManifest } from './manifest.ts';
import { runPlannedMmdebstrap, type InputFiles } from './mmdebstrap.ts';
import { parseReleaseDate, readMirrorState, type MirrorState } from './mirror.ts';
import { aptSources, bootLayer, planImageBuild, type AptSource, type ImageInputs, type ImagePlan, type KubernetesLayerInputs, type LayerPlan } from './recipe.ts';
import { checkLockComplete, resolveLockedInputs, type InputSelection, type ResolvedInputs } from './artifacts/store.ts';
import { KUBERNETES_PACKAGES, pinnedKeyring } from './kubernetes/repository.ts';
import type { ImageLock } from './lock/lock.ts';
import type { ContainerdMajor } from '../config/lab-config.ts';
import type { StagedUpgradeInputs } from './kubernetes/layer-inputs.ts';
import type { ImageSource } from './source.ts';
import { UPSTREAM_MANIFEST_NAMES } from '../cloud-init/addons/bundle.ts';
// archive: the input archive and snapshot routes (images/archive/)
import { openBuildRoute, routedExec, type BuildRoute } from './archive/build-route.ts';
import { renderMirrorMovedError } from './archive/messages.ts';

export interface DebianSettings {
  suite: string;
  mirror: string;
  securityMirror: string;
  sourceDateEpoch?: number;
  /** snapshot.debian.org moment (`YYYYMMDDTHHMMSSZ`) the suites are fetched from instead of the mirror. */
  snapshot?: string;
}

export interface BuildImageOptions {
  debian: DebianSettings;
  /** The lock, the profile (with or without Kubernetes) and an optional offline directory. */
  source: ImageSource;
  progress: Progress;
  signal?: AbortSignal;
  cacheDir?: string;
  /** Rebuild every layer even if cached (the cached copy is replaced only once the new one is complete). */
  rebuild?: boolean;
  /** Hash a cached disk in full even when its stamp matches. */
  verify?: boolean;
}

export interface BuiltImage {
  plan: ImagePlan;
  dir: string;
  disk: string;
  compressed: string;
  /** The disk's own kernel and initramfs, for a lab's direct kernel boot. */
  kernel: string;
  initrd: string;
  manifest: ImageManifest;
  /** Layer name → true when it came from the cache. */
  cacheHits: Record<string, boolean>;
  timings: StepTiming[];
  /** Present when the disk was built in this run. */
  built?: BuiltDisk;
  /** The verified locked inputs of a Kubernetes image (the seed renders add-ons from its manifests). */
  resolved?: ResolvedInputs;
}

interface BuildContext {
  opts: BuildImageOptions;
  layersDir: string;
  plan?: ImagePlan;
  cacheHits: Record<string, boolean>;
  buildSeconds: Record<string, number>;
  built?: BuiltDisk;
  resolved?: ResolvedInputs;
  /** archive: apt fetches from an input archive or a snapshot instead of the mirror. */
  route?: BuildRoute;
}

const MINUTE = 60_000;

export const IMAGE_HOST_TOOLS = ['mmdebstrap', 'debian-archive-keyring', 'unshare'] as const;
export const KUBERNETES_HOST_TOOLS = ['gpg', 'skopeo'] as const;

function mustPlan(ctx: BuildContext): ImagePlan {
  if (!ctx.plan) throw new Error('image plan missing: the "Planning the build" step did not run');
  return ctx.plan;
}

async function buildLayer(ctx: BuildContext, layer: LayerPlan, build: (tmpDir: string) => Promise<void>): Promise<void> {
  const result = await ensureLayer(layer, build, { rebuild: ctx.opts.rebuild });
  ctx.cacheHits[layer.name] = result.cached;
  ctx.buildSeconds[layer.name] = result.seconds;
}

/** Runs a layer's planned mmdebstrap run as it was hashed; a tarball layer is then hygiene-checked. */
async function buildPlannedLayer(layer: LayerPlan, tmp: string, inputs: InputFiles, signal: AbortSignal, route?: BuildRoute): Promise<void> {
  if (!layer.mmdebstrap) throw new Error(`layer ${layer.name} has no planned mmdebstrap run`);
  // archive: a routed build runs the same planned argv with apt pointed at the route's loopback proxy.
  await runPlannedMmdebstrap(layer.mmdebstrap, tmp, inputs, { signal, placeKeyring: pinnedKeyring, exec: route && routedExec(route) });
  if (existsSync(join(tmp, IMAGE_FILES.rootfsTar))) await checkRootfsHygiene(join(tmp, IMAGE_FILES.rootfsTar));
}

const NO_INPUTS: InputFiles = { debs: {}, images: {} };

export const KUBERNETES_INPUTS: InputSelection = { packages: KUBERNETES_PACKAGES, manifests: UPSTREAM_MANIFEST_NAMES, images: true };

/**
 * The build's inputs from the lock, before anything runs: the Debian mirror state apt must see
 * (and the build verifies from inside), the fixed time, and the Kubernetes layer's locked inputs.
 */
export function imageInputsFromLock(lock: ImageLock, debian: DebianSettings): ImageInputs {
  const sources = aptSources(debian);
  const releaseHashes: Record<string, string> = {};
  const releaseDates: Record<string, number> = {};
  for (const s of sources) {
    const locked = lock.debian.releases[s.suite];
    if (!locked) throw new LabError(`the lock file has no debian.releases.${s.suite}`, 'run `npm run image:lock` to lock the mirror state');
    releaseHashes[s.suite] = locked.sha256;
    releaseDates[s.suite] = parseReleaseDate(`Date: ${locked.date}`) ?? 0;
  }
  const newest = Math.max(...Object.values(releaseDates));
  return { suite: debian.suite, mirror: debian.mirror, securityMirror: debian.securityMirror, architecture: 'amd64', releaseHashes, releaseDates, sourceDateEpoch: debian.sourceDateEpoch ?? newest };
}

export const IMAGE_BUILD_STEPS: Step<BuildContext>[] = [
  {
    title: 'Checking host tools',
    timeoutMs: MINUTE,
    async run(ctx) {
      requireRoot('image:build runs mmdebstrap --mode=root and chroot');
      await requireHostTools([...IMAGE_HOST_TOOLS, ...(ctx.opts.source.kubernetes ? KUBERNETES_HOST_TOOLS : [])]);
    },
  },
  {
    title: 'Planning the build',
    // archive: verifying an input archive hashes every archived .deb (~40 s on 2 busy cores).
    timeoutMs: 5 * MINUTE,
    hint: 'the image follows the lock file: every layer is planned from it before anything is built',
    async run(ctx, { signal }) {
      const { debian, source } = ctx.opts;
      const { lock } = source;
      // Fail before minutes of building: the mirror must still be where the lock is (the build checks again from inside).
      const sources = aptSources(debian);
      // archive: an input archive (--artifacts DIR) or debian.snapshot stands in for the mirror.
      ctx.route = await openBuildRoute({ debian, sources, source, progress: ctx.opts.progress, signal });
      checkDebianLock(lock, debian.suite, sources, ctx.route?.mirrorState ?? (await readMirrorState(sources, signal)));
      if (source.kubernetes) {
        if (lock.kubernetes.minor !== source.kubernetesMinor) {
          throw new LabError(`the lock file is for Kubernetes ${lock.kubernetes.minor}, lab.yaml asks for ${source.kubernetesMinor}`, 'run `npm run image:lock` to lock the new minor (it prints what changes)');
        }
        checkLockComplete(lock, KUBERNETES_INPUTS);
      }
      ctx.plan = planImageBuild(imageInputsFromLock(lock, debian), ctx.layersDir, source.kubernetes ? kubernetesLayerInputs(lock, { containerd: source.containerd, stageUpgrade: source.stageUpgrade }) : undefined);
    },
  },
  {
    title: 'Building tools layer',
    timeoutMs: 15 * MINUTE,
    hint: 'the tools layer is a Debian chroot with the disk tools; its output is in the .failed.log file beside the layer in the cache',
    async run(ctx, { signal }) {
      const plan = mustPlan(ctx);
      await buildLayer(ctx, plan.tools, (tmp) => buildPlannedLayer(plan.tools, tmp, NO_INPUTS, signal, ctx.route));
    },
  },
  {
    title: 'Building OS layer',
    timeoutMs: 30 * MINUTE,
    hint: 'the full mmdebstrap output is in the .failed.log file beside the layer in the cache; check debian.suite and the mirror',
    async run(ctx, { signal }) {
      const plan = mustPlan(ctx);
      await buildLayer(ctx, plan.rootfs, (tmp) => buildPlannedLayer(plan.rootfs, tmp, NO_INPUTS, signal, ctx.route));
    },
  },
  {
    title: 'Fetching Kubernetes inputs',
    timeoutMs: 60 * MINUTE,
    skip: (ctx) => !ctx.opts.source.kubernetes,
    hint: 'every input is verified against the lock file; the OS layers above are cached, so a retry starts here',
    async run(ctx, { signal, progress }) {
      const { lock, artifactsDir } = ctx.opts.source;
      ctx.resolved = await resolveLockedInputs(lock, { ...KUBERNETES_INPUTS, containerd: ctx.opts.source.containerd === '2', target: ctx.opts.source.stageUpgrade }, {
        artifactsDir: ctx.route?.artifactsDir ?? artifactsDir,
        storeDir: join(dirname(ctx.layersDir), 'artifacts'),
        signal,
        onItem: (what) => progress.info(what),
      });
    },
  },
  {
    title: 'Building Kubernetes layer',
    timeoutMs: 30 * MINUTE,
    skip: (ctx) => !ctx.opts.source.kubernetes,
    hint: 'the full mmdebstrap output is in the .failed.log file beside the layer in the cache',
    async run(ctx, { signal }) {
      const plan = mustPlan(ctx);
      const resolved = ctx.resolved!;
      await buildLayer(ctx, plan.kubernetes!, (tmp) => buildPlannedLayer(plan.kubernetes!, tmp, { keyring: resolved.keyring, debs: resolved.debs, images: resolved.images }, signal, ctx.route));
    },
  },
  {
    title: 'Building disk image',
    timeoutMs: 20 * MINUTE,
    async run(ctx, { signal }) {
      const plan = mustPlan(ctx);
      const cached = await verifyDiskLayer(plan.disk.dir, { full: ctx.opts.verify });
      if (existsSync(join(plan.disk.dir, IMAGE_FILES.complete)) && !cached) {
        ctx.opts.progress.warn(`cached image ${plan.disk.dir} does not match its SHA256SUMS: building it again`);
      }
      const result = await ensureLayer(plan.disk, async (tmp) => {
        ctx.built = await buildDisk({ plan, toolsRoot: join(plan.tools.dir, 'root'), rootfsTar: join(bootLayer(plan).dir, IMAGE_FILES.rootfsTar), outDir: tmp, signal, logFile: join(tmp, 'build.log') });
        await writeImageMetadata(ctx, tmp, ctx.built);
      }, { rebuild: ctx.opts.rebuild || (existsSync(join(plan.disk.dir, IMAGE_FILES.complete)) && !cached) });
      ctx.cacheHits.disk = result.cached;
      ctx.buildSeconds.disk = result.seconds;
    },
  },
];

export async function buildImage(opts: BuildImageOptions): Promise<BuiltImage> {
  const layersDir = join(opts.cacheDir ?? cacheRoot(), 'layers');
  await ensureWritableDir(layersDir, 'the image cache (LABSMITH_CACHE_DIR)');
  const ctx: BuildContext = { opts, layersDir, cacheHits: {}, buildSeconds: {} };
  const timings = await runSteps(IMAGE_BUILD_STEPS, ctx, { progress: opts.progress, signal: opts.signal });
  const plan = mustPlan(ctx);
  const dir = plan.disk.dir;
  const manifest = JSON.parse(await readFile(join(dir, IMAGE_FILES.manifest), 'utf8')) as ImageManifest;
  return { plan, dir, disk: join(dir, IMAGE_FILES.disk), compressed: join(dir, IMAGE_FILES.compressed), kernel: join(dir, IMAGE_FILES.kernel), initrd: join(dir, IMAGE_FILES.initrd), manifest, cacheHits: ctx.cacheHits, timings, built: ctx.built, resolved: ctx.resolved };
}

/** The build stops when the mirror moved since the lock: taking new packages is a lock change, made on purpose. */
export function checkDebianLock(lock: ImageLock, suite: string, sources: AptSource[], state: MirrorState): void {
  const hint = 'run `npm run image:lock` to take the archive\'s current packages (it prints what changed), then build again';
  if (lock.debian.suite !== suite) throw new LabError(`the lock file is for Debian ${lock.debian.suite}, lab.yaml asks for ${suite}`, hint);
  const moved = sources.filter((s) => lock.debian.releases[s.suite]?.sha256 !== state.releaseHashes[s.suite]);
  // archive: the error names when the lock was taken, what moved and the three ways on.
  if (moved.length) throw renderMirrorMovedError(lock, moved, state);
}

export function kubernetesLayerInputs(lock: ImageLock, opts: { containerd?: ContainerdMajor; stageUpgrade?: string } = {}): KubernetesLayerInputs {
  const k = lock.kubernetes;
  const containerd2 = opts.containerd === '2' ? lockedContainerd2(lock) : undefined;
  return {
    minor: k.minor,
    repository: k.repository,
    keyringSha256: k.keyring.sha256!,
    keyFingerprint: k.keyring.fingerprint,
    packages: Object.fromEntries(Object.entries(k.packages).map(([n, p]) => [n, { version: p.version, sha256: p.sha256 }])),
    images: Object.fromEntries(Object.entries(lock.images).map(([ref, i]) => [ref, i.amd64])),
    ...(containerd2 ? { containerd2: { name: containerd2.name, version: containerd2.version, sha256: containerd2.sha256, suite: containerd2.suite } } : {}),
    ...(opts.stageUpgrade ? { stagedUpgrade: stagedUpgradeInputs(lock, opts.stageUpgrade) } : {}),
  };
}

function lockedContainerd2(lock: ImageLock) {
  if (!lock.containerd) {
    throw new LabError(
      'kubernetes.containerd is "2" but the lock file has no containerd entry',
      'run `npm run image:lock -- --only containerd` (it reads Debian forky\'s containerd 2 from the mirror, signed), then build again',
    );
  }
  return lock.containerd;
}

/** The lock's target section as staged inputs; the minor must be the one asked for and complete. */
export function stagedUpgradeInputs(lock: ImageLock, minor: string): StagedUpgradeInputs {
  const target = lock.target;
  const hint = `run \`npm run image:lock -- --kubernetes ${minor}\` where pkgs.k8s.io and the registries are reachable (it adds the target section), or rehearse with --artifacts DIR`;
  if (!target) throw new LabError(`--stage-upgrade ${minor}: the lock file has no target section`, hint);
  if (target.kubernetes.minor !== minor) throw new LabError(`--stage-upgrade ${minor}: the lock's target section is for Kubernetes ${target.kubernetes.minor}`, hint);
  const missing = [
    ...KUBERNETES_PACKAGES.filter((p) => !target.kubernetes.packages[p]).map((p) => `target.kubernetes.packages.${p} (${target.kubernetes.repository})`),
    ...(Object.keys(target.images).length === 0 ? [`target.images (kubeadm's images for ${minor}, from \`kubeadm config images list\` of the target kubeadm)`] : []),
  ];
  if (missing.length) throw new LabError(`--stage-upgrade ${minor}: the lock's target section is missing:\n${missing.map((m) => `  - ${m}`).join('\n')}`, hint);
  const packages = Object.fromEntries(Object.entries(target.kubernetes.packages).map(([n, p]) => [n, { version: p.version, sha256: p.sha256 }]));
  if (target.containerd) packages[target.containerd.name] = { version: target.containerd.version, sha256: target.containerd.sha256 };
  return {
    minor,
    packages,
    images: Object.fromEntries(Object.entries(target.images).map(([ref, i]) => [ref, i.amd64])),
    targetJson: `${JSON.stringify(target, null, 2)}\n`,
  };
}

async function checkRootfsHygiene(tarPath: string): Promise<void> {
  const entries = await readTar(tarPath, { readContent: (p) => HYGIENE_CONTENT_PATHS.has(p) });
  const findings = checkImageHygiene(entries, { hostname: hostname() });
  if (findings.length) {
    throw new LabError(
      `image hygiene check failed:\n${findings.map((f) => `  - /${f.path}: ${f.problem}`).join('\n')}`,
      'the recipe must remove these in its customize hook (images/boot-files.ts renderHygieneHook)',
    );
  }
}

async function writeImageMetadata(ctx: BuildContext, dir: string, built: BuiltDisk): Promise<void> {
  const plan = mustPlan(ctx);
  const entries = await readTar(join(bootLayer(plan).dir, IMAGE_FILES.rootfsTar), { readContent: (p) => p === 'var/lib/dpkg/status' });
  const status = entries.find((e) => e.path === 'var/lib/dpkg/status')?.content?.toString() ?? '';
  const files: ImageManifest['files'] = {};
  for (const name of [IMAGE_FILES.disk, IMAGE_FILES.compressed, IMAGE_FILES.kernel, IMAGE_FILES.initrd]) {
    files[name] = { bytes: (await stat(join(dir, name))).size, sha256: await sha256File(join(dir, name)) };
  }
  const manifest: ImageManifest = {
    inputsHash: plan.disk.hash,
    suite: plan.sources[0]!.suite,
    sources: plan.sources.map((s) => ({ uri: s.uri, suite: s.suite })),
    sourceDateEpoch: plan.sourceDateEpoch,
    layers: { tools: plan.tools.hash, rootfs: plan.rootfs.hash, ...(plan.kubernetes ? { kubernetes: plan.kubernetes.hash } : {}), disk: plan.disk.hash },
    ...(plan.kubernetes ? { kubernetes: { minor: ctx.opts.source.lock.kubernetes.minor, images: Object.keys(ctx.opts.source.lock.images).sort() } } : {}),
    files,
    rawBytes: built.rawBytes,
    packages: parseDpkgStatus(status),
    // The disk's own time is recorded in its layer marker once this layer completes.
    buildSeconds: { ...ctx.buildSeconds },
  };
  await writeFile(join(dir, IMAGE_FILES.manifest), JSON.stringify(manifest, null, 2) + '\n');
  await writeFile(join(dir, IMAGE_FILES.sums), renderSha256Sums(files));
  await writeDiskStamp(dir, Object.keys(files));
}

/** Size, mtime and inode of each disk file when the layer was made: a cheap check that it was not touched since. */
export interface DiskStamp {
  files: Record<string, { bytes: number; mtimeMs: number; ino: number }>;
}

export async function readDiskStamp(dir: string, names: string[]): Promise<DiskStamp> {
  const files: DiskStamp['files'] = {};
  for (const name of names) {
    const s = await stat(join(dir, name));
    files[name] = { bytes: s.size, mtimeMs: s.mtimeMs, ino: s.ino };
  }
  return { files };
}

/** Writes the stamp of the files named in SHA256SUMS (replacing any, atomically). */
export async function writeDiskStamp(dir: string, names: string[]): Promise<void> {
  const tmp = join(dir, `${IMAGE_FILES.stamp}.${process.pid}`);
  await writeFile(tmp, JSON.stringify(await readDiskStamp(dir, names), null, 2) + '\n');
  await rename(tmp, join(dir, IMAGE_FILES.stamp));
}

/**
 * Checks a cached disk layer against its SHA256SUMS. Multi-GiB files are hashed only with
 * `full` (`image:build --verify`) or when their size, mtime or inode differ from the stamp
 * written when the layer was made; a full check that passes renews the stamp.
 */
export async function verifyDiskLayer(dir: string, opts: { full?: boolean } = {}): Promise<boolean> {
  try {
    const sums = parseSha256Sums(await readFile(join(dir, IMAGE_FILES.sums), 'utf8'));
    const names = Object.keys(sums);
    if (names.length === 0) return false;
    if (!opts.full) {
      const stamp = JSON.parse(await readFile(join(dir, IMAGE_FILES.stamp), 'utf8').catch(() => '{}')) as Partial<DiskStamp>;
      const now = await readDiskStamp(dir, names).catch(() => undefined);
      if (now && stamp.files && names.every((n) => stampMatches(stamp.files![n], now.files[n]!))) return true;
    }
    for (const [name, expected] of Object.entries(sums)) {
      if (!existsSync(join(dir, name)) || (await sha256File(join(dir, name))) !== expected) return false;
    }
    await writeDiskStamp(dir, names).catch(() => undefined);
    return true;
  } catch {
    return false;
  }
}

function stampMatches(a: DiskStamp['files'][string] | undefined, b: DiskStamp['files'][string]): boolean {
  return a !== undefined && a.bytes === b.bytes && a.mtimeMs === b.mtimeMs && a.ino === b.ino;
}
