/**
 * `nightly`: refresh the lock into the night's own file, plan once (no change, or a night to
 * build), then execute the plan: build, archive the inputs, boot, run the acceptance suite,
 * tear down, publish. A failed step makes the night red: the rest is skipped, the lab is still
 * torn down, and the night is still published with what failed and the log bundle; only a
 * green night moves `latest`.
 */
import { existsSync } from 'node:fs';
import { copyFile, link, mkdir, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { LabError } from '../core/errors.ts';
import { requireHostTools, requireRoot } from '../core/host-tools.ts';
import { sha256, sha256File } from '../core/hash.ts';
import { IMAGE_FILES, LAB_FILES } from '../core/paths.ts';
import type { Progress } from '../core/progress.ts';
import type { StepTiming } from '../core/steps.ts';
import { formatSize } from '../core/units.ts';
import { readTar } from '../core/tar.ts';
import type { LabConfig } from '../config/lab-config.ts';
import { buildImage, IMAGE_HOST_TOOLS, type BuiltImage } from '../images/build.ts';
import { readImageLock, renderImageLock, type ImageLock } from '../images/lock/lock.ts';
import { refreshLock } from '../images/lock/refresh.ts';
import { renderSha256Sums } from '../images/manifest.ts';
import { aptSources, bootLayer } from '../images/recipe.ts';
import type { ImageSource } from '../images/source.ts';
import { acceptanceContextForLab } from '../lab/acceptance/context.ts';
import { runAcceptanceSuite } from '../lab/acceptance/suite.ts';
import { labDown } from '../lab/down.ts';
import type { LabDriver } from '../lab/drivers/driver.ts';
import { QemuDriver } from '../lab/drivers/qemu.ts';
import { acquireLabLock } from '../lab/state.ts';
import { LAB_HOST_TOOLS, labUp } from '../lab/up.ts';
import { loadNightRecord, loadSecurityChangelogs, type NightSummary } from './diff/load.ts';
import { planImageDiff, type PackageRecord } from './diff/model.ts';
import { archiveNightInputs, readArchivedIndexes } from './input-archive.ts';
import { NIGHT_FILES, NIGHTS_DIR_FILES } from './night-files.ts';
import { packageRecords, securityFirst } from './packages.ts';
import { lastGreenNight, planNight, planPrune, planTimings, planVerdict, sortNights, type NightEntry, type NightPlan } from './plan.ts';
import { emptyRecord, renderNightReportJson, renderNightReportMarkdown } from './report.ts';

export interface NightlyOptions {
  /** The lab config (lab.yaml): Debian suite, Kubernetes minor, the lab the night boots. */
  config: LabConfig;
  outDir: string;
  /** The repository's lock: the refresh starts from it and never writes it. */
  repoLock?: string;
  baselineDir?: string;
  force?: boolean;
  keep?: number;
  osOnly?: boolean;
  artifactsDir?: string;
  cacheDir?: string;
  driver?: LabDriver;
  progress: Progress;
  signal?: AbortSignal;
  now?: () => Date;
}

export interface NightlyResult {
  outcome: 'no-change' | 'green' | 'red';
  exitCode: 0 | 1;
  message: string;
  plan: NightPlan;
  /** The night's directory (absent for no change). */
  dir?: string;
  reportMarkdown?: string;
}

/** Files in DIR about the last run, whatever it was: what a CI job shows and files. */
export const LAST_RUN_FILES = { markdown: 'last-run.md', json: 'last-run.json' } as const;

export const NIGHTLY_HOST_TOOLS = [...IMAGE_HOST_TOOLS, ...LAB_HOST_TOOLS, 'xz', 'dpkg-deb'];

export async function readNights(outDir: string): Promise<NightEntry[]> {
  const names = (await readdir(outDir, { withFileTypes: true }).catch(() => [])).filter((e) => e.isDirectory()).map((e) => e.name);
  const nights: NightEntry[] = [];
  for (const { name } of sortNights(names.map((name) => ({ name })))) {
    const file = join(outDir, name, NIGHT_FILES.night);
    const summary = existsSync(file) ? (JSON.parse(await readFile(file, 'utf8')) as NightSummary) : undefined;
    nights.push({ name, summary });
  }
  return nights;
}

async function readBaseline(outDir: string, nights: NightEntry[], baselineDir?: string): Promise<{ name: string; dir: string; lock: ImageLock } | undefined> {
  const dir = baselineDir ? resolve(baselineDir) : lastGreenNight(nights) ? join(outDir, lastGreenNight(nights)!.name) : undefined;
  if (!dir) return undefined;
  if (!existsSync(join(dir, NIGHT_FILES.lock)) || !existsSync(join(dir, NIGHT_FILES.manifest))) {
    throw new LabError(`--baseline ${baselineDir}: not a night directory (no ${NIGHT_FILES.lock} or ${NIGHT_FILES.manifest})`, 'pass a directory that `npm run nightly` published, e.g. DIR/2026-11-30', 2);
  }
  return { name: basename(dir), dir, lock: await readImageLock(join(dir, NIGHT_FILES.lock)) };
}

/** The lab a night boots: its own name and state directory under DIR, so it never meets the user's lab. */
export function nightlyLabConfig(config: LabConfig, workDir: string): LabConfig {
  return { ...config, name: `${config.name}-nightly`, stateDir: join(workDir, 'lab') };
}

const today = (d: Date) => d.toISOString().slice(0, 10);

export async function runNightly(opts: NightlyOptions): Promise<NightlyResult> {
  const { config, progress, signal } = opts;
  const outDir = resolve(opts.outDir);
  requireRoot('the nightly builds with mmdebstrap --mode=root');
  await requireHostTools(NIGHTLY_HOST_TOOLS);
  const workDir = join(outDir, NIGHTS_DIR_FILES.work);
  await mkdir(workDir, { recursive: true });
  const runLock = await acquireLabLock(workDir, 'nightly');
  try {
    const nights = await readNights(outDir);
    const baseline = await readBaseline(outDir, nights, opts.baselineDir);

    progress.start('Refreshing the lock');
    const repoLock = opts.repoLock && existsSync(opts.repoLock) ? await readImageLock(opts.repoLock) : undefined;
    const refreshed = await refreshLock({ config, previous: repoLock ?? baseline?.lock, signal });
    progress.end(true);
    for (const s of refreshed.skipped) progress.warn(`lock: ${s.part} kept its locked entries: ${s.reason}`);
    const lock = refreshed.lock;

    const plan = planNight({
      today: today(opts.now?.() ?? new Date()),
      nights,
      freshLock: lock,
      baseline,
      baselineIsExplicit: Boolean(opts.baselineDir),
      force: Boolean(opts.force),
      keep: opts.keep,
      kubernetesEnabled: config.kubernetes.enabled,
      osOnlyFlag: Boolean(opts.osOnly),
    });
    if (plan.kind === 'no-change') {
      await writeLastRun(outDir, `# Nightly: no change\n\n${plan.message}\n`, { outcome: 'no-change', exitCode: 0, baseline: plan.baseline });
      return { outcome: 'no-change', exitCode: 0, message: plan.message, plan };
    }
    if (plan.osOnly) progress.info(`OS-only night: ${plan.osOnlyReason}`);
    return await executeNight(opts, plan, lock, baseline, nights, outDir, workDir);
  } finally {
    await runLock.release();
  }
}

interface NightState {
  image?: BuiltImage;
  buildTimings: StepTiming[];
  bootTimings: StepTiming[];
  packages?: PackageRecord[];
  checks?: { name: string; ok: boolean; skip?: string | false; todo?: string | false; detail?: string }[];
  failedStep?: { title: string; message: string };
  steps: { title: string; seconds: number; ok: boolean }[];
  bundles: string[];
}

async function executeNight(opts: NightlyOptions, plan: Extract<NightPlan, { kind: 'build' }>, lock: ImageLock, baseline: { name: string; dir: string } | undefined, nights: NightEntry[], outDir: string, workDir: string): Promise<NightlyResult> {
  const { config, progress, signal } = opts;
  const driver = opts.driver ?? new QemuDriver();
  const labConfig = nightlyLabConfig(config, workDir);
  const staging = join(outDir, `.${plan.night}.partial`);
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  const source: ImageSource = { lock, kubernetes: !plan.osOnly, kubernetesMinor: config.kubernetes.version, artifactsDir: opts.artifactsDir };
  const state: NightState = { buildTimings: [], bootTimings: [], steps: [], bundles: [] };
  const archiveDir = join(outDir, NIGHTS_DIR_FILES.archive);

  /** Runs one night step unless an earlier one failed; a failure is recorded, not thrown (an interrupt is). */
  const step = async (title: string, body: () => Promise<void>, always = false) => {
    if (state.failedStep && !always) return;
    const started = Date.now();
    progress.start(title);
    let ok = true;
    try {
      await body();
    } catch (error) {
      ok = false;
      if (signal?.aborted) throw error;
      const message = error instanceof LabError && error.hint ? `${error.message}\nhint: ${error.hint}` : error instanceof Error ? error.message : String(error);
      state.failedStep ??= { title, message };
      progress.warn(`${title} failed: ${message.split('\n')[0]}`);
    } finally {
      state.steps.push({ title, seconds: (Date.now() - started) / 1000, ok });
      progress.end(ok);
    }
  };

  let labStarted = false;
  try {
    await step('Building the image', async () => {
      state.image = await buildImage({ debian: config.debian, source, progress, signal, cacheDir: opts.cacheDir });
      state.buildTimings = state.image.timings;
    });
    await step('Archiving the inputs', async () => {
      const image = state.image!;
      const status = (await readTar(join(bootLayer(image.plan).dir, IMAGE_FILES.rootfsTar), { readContent: (p) => p === 'var/lib/dpkg/status' })).find((e) => e.path === 'var/lib/dpkg/status')?.content?.toString();
      if (!status) throw new LabError('the OS layer has no var/lib/dpkg/status', 'rebuild the image: npm run image:build -- --rebuild');
      const sources = aptSources(config.debian);
      const archived = await archiveNightInputs(archiveDir, image, lock, sources, { signal, onItem: (w) => progress.info(w) });
      progress.info(`input archive ${archiveDir}: this night added ${archived.addedFiles} files (${formatSize(archived.addedBytes)}); ${archived.locks} lock(s), ${formatSize(archived.totalBytes)} in all`);
      // Origins from the archived indexes (offline); what no Debian index lists came from pkgs.k8s.io.
      const indexes = securityFirst(await readArchivedIndexes(archived.view, sources));
      state.packages = packageRecords(status, indexes, (name) => (lock.kubernetes.packages[name] ? lock.kubernetes.repository : undefined));
    });
    await step('Booting the lab', async () => {
      labStarted = true;
      const up = await labUp({ config: labConfig, driver, source, progress, signal, cacheDir: opts.cacheDir, retain: true });
      state.bootTimings = up.timings;
    });
    await step('Running the acceptance suite', async () => {
      const ctx = await acceptanceContextForLab(labConfig, driver);
      const suite = await runAcceptanceSuite({ ctx, name: labConfig.name, reportDir: staging, signal });
      state.checks = (JSON.parse(await readFile(suite.files.json, 'utf8')) as { checks: NonNullable<NightState['checks']> }).checks;
      if (suite.leftovers.length) progress.warn(`the suite could not remove: ${suite.leftovers.join('; ')}`);
    });
  } finally {
    if (labStarted) {
      await step('Tearing down the lab', async () => {
        // A lab that failed to come up was retained: keep its console and qemu logs in the night's bundle first.
        if (state.failedStep?.title === 'Booting the lab') await keepBootLogs(labConfig.stateDir, join(staging, 'bundle-boot'), state);
        await labDown({ config: labConfig, progress });
      }, true);
    }
  }

  let published: NightlyResult | undefined;
  await step('Publishing the night', async () => {
    published = await publishNight({ opts, plan, lock, baseline, nights, outDir, staging, archiveDir, state });
  }, true);
  if (!published) {
    await rm(staging, { recursive: true, force: true });
    throw new LabError(`publishing ${plan.night} failed: ${state.failedStep?.message ?? 'unknown'}`, 'check that DIR is writable and has space', 1);
  }
  return published;
}

async function keepBootLogs(stateDir: string, bundle: string, state: NightState): Promise<void> {
  await mkdir(bundle, { recursive: true });
  for (const name of [LAB_FILES.serialLog, LAB_FILES.qemuLog]) if (existsSync(join(stateDir, name))) await copyFile(join(stateDir, name), join(bundle, name));
  state.bundles.push('bundle-boot');
}

async function linkOrCopy(from: string, to: string): Promise<void> {
  await link(from, to).catch(() => copyFile(from, to));
}

interface PublishInputs {
  opts: NightlyOptions;
  plan: Extract<NightPlan, { kind: 'build' }>;
  lock: ImageLock;
  baseline?: { name: string; dir: string };
  nights: NightEntry[];
  outDir: string;
  staging: string;
  archiveDir: string;
  state: NightState;
}

async function publishNight(p: PublishInputs): Promise<NightlyResult> {
  const { plan, state, staging, outDir } = p;
  const image = state.image;
  const files: Record<string, { sha256: string }> = {};
  if (image) {
    await linkOrCopy(image.compressed, join(staging, NIGHT_FILES.image));
    files[NIGHT_FILES.image] = { sha256: await sha256File(join(staging, NIGHT_FILES.image)) };
    await writeFile(join(staging, NIGHT_FILES.manifest), JSON.stringify(image.manifest, null, 2) + '\n');
    files[NIGHT_FILES.manifest] = { sha256: sha256(await readFile(join(staging, NIGHT_FILES.manifest))) };
  }
  const lockText = renderImageLock(p.lock);
  await writeFile(join(staging, NIGHT_FILES.lock), lockText);
  files[NIGHT_FILES.lock] = { sha256: sha256(lockText) };
  if (state.packages) await writeFile(join(staging, NIGHT_FILES.packages), JSON.stringify(state.packages, null, 2) + '\n');
  await writeFile(join(staging, NIGHT_FILES.sums), renderSha256Sums(files));
  for (const entry of await readdir(staging)) if (entry.startsWith('bundle-') && !state.bundles.includes(entry)) state.bundles.push(entry);

  const timings = planTimings(state.buildTimings, state.bootTimings);
  const verdict = planVerdict(state.checks ?? [], plan.osOnly, state.failedStep ? `${state.failedStep.title}: ${state.failedStep.message.split('\n')[0]}` : undefined);
  const summary: NightSummary = {
    name: plan.night,
    date: (p.opts.now?.() ?? new Date()).toISOString(),
    green: verdict.green,
    verdict,
    timings,
    osOnly: plan.osOnly,
    ...(plan.osOnlyReason ? { osOnlyReason: plan.osOnlyReason } : {}),
    ...(state.failedStep ? { failedStep: state.failedStep } : {}),
    ...(plan.baseline ? { baseline: plan.baseline } : {}),
    lockSha256: sha256(lockText),
  };
  await writeFile(join(staging, NIGHT_FILES.night), JSON.stringify(summary, null, 2) + '\n');
  await writeFile(join(staging, NIGHT_FILES.timings), JSON.stringify({ ...timings, steps: state.steps }, null, 2) + '\n');

  // The report: this night against the baseline, from the files just written.
  const old = p.baseline ? await loadNightRecord(p.baseline.dir) : emptyRecord(p.lock.debian.suite);
  // Without an image there is nothing to compare but the lock: the baseline's contents stand in for this night's.
  const now = image ? { ...(await loadNightRecord(staging)), name: plan.night } : { ...old, name: plan.night, verdict, timings, lock: p.lock };
  const changelogs = await loadSecurityChangelogs(old, now, p.archiveDir, p.opts.signal);
  const diff = planImageDiff({ old, new: now, changelogs });
  const report = { summary, diff, steps: state.steps, compressedBytes: image?.manifest.files[IMAGE_FILES.compressed]?.bytes, bundles: state.bundles };
  const markdown = renderNightReportMarkdown(report);
  await writeFile(join(staging, NIGHT_FILES.reportMarkdown), markdown);
  await writeFile(join(staging, NIGHT_FILES.reportJson), renderNightReportJson(report));

  const dir = join(outDir, plan.night);
  await rename(staging, dir);
  if (verdict.green) await pointLink(outDir, NIGHTS_DIR_FILES.latest, plan.night);
  await writeLastRun(outDir, markdown, { outcome: verdict.green ? 'green' : 'red', exitCode: verdict.green ? 0 : 1, night: plan.night, baseline: plan.baseline });

  const latest = verdict.green ? plan.night : lastGreenNight(p.nights)?.name;
  for (const name of planPrune([...p.nights, { name: plan.night, summary }], plan.keep, latest)) {
    p.opts.progress.info(`pruning night ${name} (--keep ${plan.keep})`);
    await rm(join(outDir, name), { recursive: true, force: true });
  }
  const message = verdict.green ? `night ${plan.night} is green: ${dir}` : `night ${plan.night} is red (${verdict.failed[0] ?? 'no checks ran'}): ${dir}`;
  return { outcome: verdict.green ? 'green' : 'red', exitCode: verdict.green ? 0 : 1, message, plan, dir, reportMarkdown: markdown };
}

/** Moves a symlink atomically (a new link renamed over the old one). */
async function pointLink(dir: string, name: string, target: string): Promise<void> {
  const tmp = join(dir, `.${name}.tmp`);
  await rm(tmp, { force: true });
  await symlink(target, tmp);
  await rename(tmp, join(dir, name));
}

async function writeLastRun(outDir: string, markdown: string, json: Record<string, unknown>): Promise<void> {
  await mkdir(outDir, { recursive: true });
  await writeFile(join(outDir, LAST_RUN_FILES.markdown), markdown);
  await writeFile(join(outDir, LAST_RUN_FILES.json), JSON.stringify(json, null, 2) + '\n');
}
