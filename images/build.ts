/**
 * `image:build`: reads the mirror's state, plans content-addressed layers, and builds the
 * ones not cached: tools (disk tools chroot), rootfs (mmdebstrap tarball, hygiene-checked)
 * and disk (qcow2 + compressed qcow2 + SHA256SUMS + manifest.json).
 */
import { existsSync } from 'node:fs';
import { chmod, copyFile, link, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { LabError } from '../core/errors.ts';
import { ensureWritableDir } from '../core/fs.ts';
import { run } from '../core/exec.ts';
import { sha256File } from '../core/hash.ts';
import { cacheRoot, IMAGE_FILES, KUBERNETES_GUEST_PATHS } from '../core/paths.ts';
import type { Progress } from '../core/progress.ts';
import { runSteps, type Step, type StepTiming } from '../core/steps.ts';
import { readTar } from '../core/tar.ts';
import { requireHostTools, requireRoot } from '../core/host-tools.ts';
import { renderConfigureHook, renderEarlyRootfsFiles, renderHygieneHook, renderLateRootfsFiles } from './boot-files.ts';
import { buildDisk, type BuiltDisk } from './disk.ts';
import { writeFileTree } from './files.ts';
import { checkImageHygiene, HYGIENE_CONTENT_PATHS } from './hygiene.ts';
import { ensureLayer, isLayerComplete, removeLayer } from './layer-cache.ts';
import { parseDpkgStatus, parseSha256Sums, renderSha256Sums, type ImageManifest } from './manifest.ts';
import { renderMmdebstrapArgs } from './mmdebstrap.ts';
import { readMirrorState, type MirrorState } from './mirror.ts';
import { aptSources, bootLayer, DPKG_EXCLUDES, OS_PACKAGES, planImageBuild, TOOLS_PACKAGES, type AptSource, type ImageInputs, type ImagePlan, type KubernetesLayerInputs, type LayerPlan } from './recipe.ts';
import { resolveLockedInputs, type ResolvedInputs } from './artifacts/store.ts';
import { KUBERNETES_PACKAGES, pinnedKeyring } from './kubernetes/repository.ts';
import { renderKubernetesHook, renderKubernetesRootfsFiles } from './kubernetes/rootfs-files.ts';
import type { ImageLock } from './lock/lock.ts';
import type { ImageSource } from './source.ts';
// archive: the input archive and snapshot routes (images/archive/)
import { openBuildRoute, routedMmdebstrap, type BuildRoute } from './archive/build-route.ts';
import { renderMirrorMovedError } from './archive/messages.ts';
import { UPSTREAM_MANIFEST_NAMES } from '../cloud-init/addons/bundle.ts';

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
  /** Rebuild every layer even if cached. */
  rebuild?: boolean;
}

export interface BuiltImage {
  plan: ImagePlan;
  dir: string;
  disk: string;
  compressed: string;
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
  /** Mirror state and fixed time, kept to re-plan once the Kubernetes inputs are known. */
  imageInputs?: ImageInputs;
  resolved?: ResolvedInputs;
  /** archive: apt fetches from an input archive or a snapshot instead of the mirror. */
  route?: BuildRoute;
}

const MINUTE = 60_000;

export const IMAGE_HOST_TOOLS = ['mmdebstrap', 'debian-archive-keyring'] as const;
export const KUBERNETES_HOST_TOOLS = ['gpg', 'skopeo'] as const;

function mustPlan(ctx: BuildContext): ImagePlan {
  if (!ctx.plan) throw new Error('image plan missing: the "Reading mirror state" step did not run');
  return ctx.plan;
}

async function buildLayer(ctx: BuildContext, layer: LayerPlan, build: (tmpDir: string) => Promise<void>): Promise<void> {
  const result = await ensureLayer(layer, build);
  ctx.cacheHits[layer.name] = result.cached;
  ctx.buildSeconds[layer.name] = result.seconds;
}

/** mmdebstrap with the plan's fixed build time; its whole output goes to the layer's build.log. */
function runMmdebstrap(plan: ImagePlan, args: string[], layerTmp: string, signal: AbortSignal, route?: BuildRoute) {
  // archive: a routed build fetches through the archive's or snapshot's loopback proxy.
  if (route) return routedMmdebstrap(route, args, (routed) => run('mmdebstrap', routed, { env: { SOURCE_DATE_EPOCH: String(plan.sourceDateEpoch) }, signal, logFile: join(layerTmp, 'build.log') }));
  return run('mmdebstrap', args, { env: { SOURCE_DATE_EPOCH: String(plan.sourceDateEpoch) }, signal, logFile: join(layerTmp, 'build.log') });
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
    title: 'Reading mirror state',
    timeoutMs: 2 * MINUTE,
    hint: 'the image follows the mirror: without it no layer can be planned',
    async run(ctx, { signal }) {
      const { debian } = ctx.opts;
      const sources = aptSources(debian);
      // archive: an input archive (--artifacts DIR) or debian.snapshot stands in for the mirror.
      ctx.route = await openBuildRoute({ debian, sources, source: ctx.opts.source, progress: ctx.opts.progress, signal });
      const state = ctx.route?.mirrorState ?? (await readMirrorState(sources, signal));
      checkDebianLock(ctx.opts.source.lock, debian.suite, sources, state);
      ctx.imageInputs = { ...debian, architecture: 'amd64', releaseHashes: state.releaseHashes, sourceDateEpoch: debian.sourceDateEpoch ?? state.newestDate };
      ctx.plan = planImageBuild(ctx.imageInputs, ctx.layersDir);
      if (ctx.opts.rebuild) for (const layer of [ctx.plan.tools, ctx.plan.rootfs]) await removeLayer(layer);
    },
  },
  {
    title: 'Building tools layer',
    timeoutMs: 15 * MINUTE,
    hint: 'the tools layer is a Debian chroot with the disk tools; its output is in the .failed.log file beside the layer in the cache',
    async run(ctx, { signal }) {
      const plan = mustPlan(ctx);
      await buildLayer(ctx, plan.tools, async (tmp) => {
        await runMmdebstrap(plan, renderMmdebstrapArgs({ variant: 'apt', format: 'directory', packages: TOOLS_PACKAGES, sources: plan.sources, output: join(tmp, 'root') }), tmp, signal, ctx.route);
      });
    },
  },
  {
    title: 'Building OS layer',
    timeoutMs: 30 * MINUTE,
    hint: 'the full mmdebstrap output is in the .failed.log file beside the layer in the cache; check debian.suite and the mirror',
    async run(ctx, { signal }) {
      const plan = mustPlan(ctx);
      await buildLayer(ctx, plan.rootfs, (tmp) => buildRootfsTar(plan, tmp, { packages: OS_PACKAGES }, signal, ctx.route));
    },
  },
  {
    title: 'Fetching Kubernetes inputs',
    timeoutMs: 60 * MINUTE,
    skip: (ctx) => !ctx.opts.source.kubernetes,
    hint: 'every input is verified against the lock file; the OS layers above are cached, so a retry starts here',
    async run(ctx, { signal, progress }) {
      const { lock, artifactsDir, kubernetesMinor: minor } = ctx.opts.source;
      if (lock.kubernetes.minor !== minor) {
        throw new LabError(`the lock file is for Kubernetes ${lock.kubernetes.minor}, lab.yaml asks for ${minor}`, 'run `npm run image:lock` to lock the new minor (it prints what changes)');
      }
      ctx.resolved = await resolveLockedInputs(lock, { packages: KUBERNETES_PACKAGES, manifests: UPSTREAM_MANIFEST_NAMES, images: true }, {
        artifactsDir: ctx.route?.artifactsDir ?? artifactsDir,
        storeDir: join(dirname(ctx.layersDir), 'artifacts'),
        signal,
        onItem: (what) => progress.info(what),
      });
      ctx.plan = planImageBuild(ctx.imageInputs!, ctx.layersDir, kubernetesLayerInputs(lock));
      if (ctx.opts.rebuild && ctx.plan.kubernetes) await removeLayer(ctx.plan.kubernetes);
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
      const layer = plan.kubernetes!;
      await buildLayer(ctx, layer, (tmp) =>
        buildRootfsTar(plan, tmp, {
          packages: [...OS_PACKAGES, ...KUBERNETES_PACKAGES.map((p) => resolved.debs[p]!)],
          extraLate: async (late) => {
            await writeFileTree(late, renderKubernetesRootfsFiles(kubernetesLayerInputs(ctx.opts.source.lock)));
            await mkdir(join(late, dirname(KUBERNETES_GUEST_PATHS.keyring)), { recursive: true });
            await pinnedKeyring(resolved.keyring, ctx.opts.source.lock.kubernetes.keyring.fingerprint, join(late, KUBERNETES_GUEST_PATHS.keyring));
            await chmod(join(late, KUBERNETES_GUEST_PATHS.keyring), 0o644);
            for (const archive of Object.values(resolved.images)) await linkOrCopy(archive, join(late, KUBERNETES_GUEST_PATHS.imagesDir, basename(archive)));
          },
          extraHooks: { 'kubernetes.sh': renderKubernetesHook() },
        }, signal, ctx.route),
      );
    },
  },
  {
    title: 'Building disk image',
    timeoutMs: 20 * MINUTE,
    async run(ctx, { signal }) {
      const plan = mustPlan(ctx);
      if (ctx.opts.rebuild) await removeLayer(plan.disk);
      if (isLayerComplete(plan.disk) && !(await verifyDiskLayer(plan.disk.dir))) {
        ctx.opts.progress.warn(`cached image ${plan.disk.dir} does not match its SHA256SUMS: rebuilding it`);
        await removeLayer(plan.disk);
      }
      await buildLayer(ctx, plan.disk, async (tmp) => {
        ctx.built = await buildDisk({ plan, toolsRoot: join(plan.tools.dir, 'root'), rootfsTar: join(bootLayer(plan).dir, IMAGE_FILES.rootfsTar), outDir: tmp, signal });
        await writeImageMetadata(ctx, tmp, ctx.built);
      });
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
  return { plan, dir, disk: join(dir, IMAGE_FILES.disk), compressed: join(dir, IMAGE_FILES.compressed), manifest, cacheHits: ctx.cacheHits, timings, built: ctx.built, resolved: ctx.resolved };
}

/** The build stops when the mirror moved since the lock: taking new packages is a lock change, made on purpose. */
export function checkDebianLock(lock: ImageLock, suite: string, sources: AptSource[], state: MirrorState): void {
  const hint = 'run `npm run image:lock` to take the archive\'s current packages (it prints what changed), then build again';
  if (lock.debian.suite !== suite) throw new LabError(`the lock file is for Debian ${lock.debian.suite}, lab.yaml asks for ${suite}`, hint);
  const moved = sources.filter((s) => lock.debian.releases[s.suite]?.sha256 !== state.releaseHashes[s.suite]);
  // archive: the error names when the lock was taken, what moved and the three ways on.
  if (moved.length) throw renderMirrorMovedError(lock, moved, state);
}

export function kubernetesLayerInputs(lock: ImageLock): KubernetesLayerInputs {
  const k = lock.kubernetes;
  return {
    minor: k.minor,
    repository: k.repository,
    keyringSha256: k.keyring.sha256!,
    packages: Object.fromEntries(Object.entries(k.packages).map(([n, p]) => [n, { version: p.version, sha256: p.sha256 }])),
    images: Object.fromEntries(Object.entries(lock.images).map(([ref, i]) => [ref, i.amd64])),
  };
}

async function linkOrCopy(from: string, to: string): Promise<void> {
  await mkdir(dirname(to), { recursive: true });
  await link(from, to).catch(() => copyFile(from, to));
}

/** One mmdebstrap run into `<tmp>/rootfs.tar` with the recipe's files and hooks, plus a layer's own. */
async function buildRootfsTar(
  plan: ImagePlan,
  tmp: string,
  layer: { packages: readonly string[]; extraLate?: (lateDir: string) => Promise<void>; extraHooks?: Record<string, string> },
  signal: AbortSignal,
  route?: BuildRoute,
): Promise<void> {
  const hooks = join(tmp, 'hooks');
  await writeFileTree(join(hooks, 'early'), renderEarlyRootfsFiles());
  await writeFileTree(join(hooks, 'late'), renderLateRootfsFiles(plan));
  await layer.extraLate?.(join(hooks, 'late'));
  const hookFiles: Record<string, string> = { 'configure.sh': renderConfigureHook(), ...layer.extraHooks, 'hygiene.sh': renderHygieneHook() };
  await writeFileTree(hooks, Object.fromEntries(Object.entries(hookFiles).map(([name, content]) => [name, { content, mode: 0o755 }])));
  const args = renderMmdebstrapArgs({
    variant: 'apt',
    format: 'tar',
    packages: layer.packages,
    sources: plan.sources,
    output: join(tmp, IMAGE_FILES.rootfsTar),
    dpkgOptions: DPKG_EXCLUDES,
    syncInEarly: join(hooks, 'early'),
    syncInLate: join(hooks, 'late'),
    // Hygiene runs last, after every layer's own hook.
    customizeHooks: Object.keys(hookFiles).map((name) => join(hooks, name)),
  });
  await runMmdebstrap(plan, args, tmp, signal, route);
  await rm(hooks, { recursive: true });
  await checkRootfsHygiene(join(tmp, IMAGE_FILES.rootfsTar));
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
  for (const name of [IMAGE_FILES.disk, IMAGE_FILES.compressed]) {
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
}

/** Checks a cached disk layer against its SHA256SUMS. */
export async function verifyDiskLayer(dir: string): Promise<boolean> {
  try {
    const sums = parseSha256Sums(await readFile(join(dir, IMAGE_FILES.sums), 'utf8'));
    if (Object.keys(sums).length === 0) return false;
    for (const [name, expected] of Object.entries(sums)) {
      if (!existsSync(join(dir, name)) || (await sha256File(join(dir, name))) !== expected) return false;
    }
    return true;
  } catch {
    return false;
  }
}
