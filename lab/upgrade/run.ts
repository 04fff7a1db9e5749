/**
 * lab:upgrade's effects: the executor runs the planned steps in order through a step
 * implementation (an interface, so the containerd migration is injected and the order is tested
 * without a VM), measures each step and the downtime window, compares the suite after with the
 * baseline, and returns what the runbook is rendered from. `labUpgradeSteps` is the real
 * implementation over SSH; `dryRunInGuest` and `rollBackLab` are the other two entry points.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { LabError } from '../../core/errors.ts';
import { shellQuote } from '../../core/exec.ts';
import type { Progress } from '../../core/progress.ts';
import { REPO_ROOT, UPGRADE_GUEST_PATHS } from '../../core/paths.ts';
import type { UserCheck } from '../../config/lab-config.ts';
import { STAGED_INDEX_HOOK } from '../../images/recipe.ts';
import type { TapReport } from '../acceptance/report.ts';
import { fileToRemote, remoteRun, remoteToFile, type RemoteHost } from '../backup/remote.ts';
import { compareCanaries, compareSuiteRuns, parseCanarySums, type SuiteComparison } from './compare.ts';
import { GUEST_KUBERNETES_APT_KEYRING, GUEST_KUBERNETES_APT_SOURCE, renderUpgradeConfiguration, renderUpgradeStepParams } from './kubeadm-upgrade.ts';
import type { PlannedStep, UpgradePlan } from './plan.ts';
import type { UpgradeMeasurements } from './runbook.ts';
import { createSnapshot, rollBackToSnapshot } from './snapshot.ts';
import type { VmControl } from './vm-control.ts';
import type { MigrateContainerdOptions } from './containerd-migration.ts';

export interface SuiteOutcome { report: TapReport; summary: string }

/** What each kind of step does; `migrateContainerd` is the containerd 1.7 → 2 move (migrateContainerdInGuest). */
export interface UpgradeStepImpl {
  baseline(step: PlannedStep): Promise<{ suite: SuiteOutcome; canaries: Record<string, string> }>;
  rollbackPoint(step: PlannedStep): Promise<void>;
  importImages(step: PlannedStep): Promise<void>;
  migrateContainerd(step: PlannedStep): Promise<void>;
  kubeadm(step: PlannedStep): Promise<void>;
  addon(step: PlannedStep): Promise<void>;
  after(step: PlannedStep): Promise<{ suite: SuiteOutcome; canaries: Record<string, string> }>;
}

export interface UpgradeResult {
  measurements: UpgradeMeasurements;
  comparison: SuiteComparison;
  canaries: { ok: boolean; problems: string[]; count: number };
  ok: boolean;
}

/** Runs the plan's steps as planned; a failed step stops the run naming the way back. */
export async function executeUpgradePlan(plan: UpgradePlan, impl: UpgradeStepImpl, opts: { progress: Progress; labName: string; now?: () => number; signal?: AbortSignal }): Promise<UpgradeResult> {
  const now = opts.now ?? Date.now;
  const stepSeconds: Record<string, number> = {};
  const startedAt = new Date(now()).toISOString();
  let baseline: Awaited<ReturnType<UpgradeStepImpl['baseline']>> | undefined;
  let after: Awaited<ReturnType<UpgradeStepImpl['after']>> | undefined;
  let pastRollbackPoint = false;
  for (const step of plan.steps) {
    if (opts.signal?.aborted) throw new LabError('interrupted', pastRollbackPoint ? 'roll back with npm run lab:upgrade -- --rollback' : 'nothing of Kubernetes was changed yet');
    opts.progress.start(step.title);
    const t0 = now();
    try {
      if (step.noop) opts.progress.info(`nothing to do: ${step.noop}`);
      else if (step.id === 'baseline') baseline = await impl.baseline(step);
      else if (step.id === 'rollback-point') await impl.rollbackPoint(step);
      else if (step.id === 'import-images') await impl.importImages(step);
      else if (step.id === 'containerd') await impl.migrateContainerd(step);
      else if (step.id === 'kubeadm') await impl.kubeadm(step);
      else if (step.id === 'after') after = await impl.after(step);
      else await impl.addon(step);
      if (step.id === 'rollback-point') pastRollbackPoint = true;
    } catch (error) {
      opts.progress.end(false);
      const message = error instanceof Error ? error.message : String(error);
      throw new LabError(`${step.title} failed: ${message}`, pastRollbackPoint ? 'the lab is between versions: npm run lab:upgrade -- --rollback returns it to the snapshot taken before' : (error as LabError).hint ?? 'nothing of Kubernetes was changed yet');
    }
    stepSeconds[step.id] = (now() - t0) / 1000;
    opts.progress.end(true);
  }
  if (!baseline || !after) throw new Error('the plan has no baseline or after step');
  const comparison = compareSuiteRuns(baseline.suite.report, after.suite.report);
  const canaryCheck = compareCanaries(baseline.canaries, after.canaries);
  const canaries = { ...canaryCheck, count: Object.keys(baseline.canaries).length };
  const downtimeSeconds = plan.steps.filter((s) => s.disruptive).reduce((sum, s) => sum + (stepSeconds[s.id] ?? 0), 0);
  const measurements: UpgradeMeasurements = { rehearsedAt: startedAt, labName: opts.labName, stepSeconds, downtimeSeconds, comparison, canaries };
  return { measurements, comparison, canaries, ok: comparison.ok && canaries.ok };
}

export interface LabUpgradeContext {
  plan: UpgradePlan;
  remote: RemoteHost;
  vm: VmControl;
  /** Host directory for what production must keep (etcd snapshot, /etc/kubernetes tarball): 0700. */
  backupDir: string;
  /** The payload on the host (--artifacts DIR, verified against the lock): guest-relative name (`debs/…`, `images/…`) → host file, copied into the guest's payload directory first. */
  uploads?: Record<string, string>;
  runSuite: (label: string) => Promise<SuiteOutcome>;
  /** The injected containerd 1.7 → 2 move (debs: host paths of the pinned .debs). */
  migrateContainerd: (opts: MigrateContainerdOptions) => Promise<unknown>;
  progress: Progress;
  signal?: AbortSignal;
  userChecks?: UserCheck[];
}

const sh = (remote: RemoteHost, script: string, ctx: { signal?: AbortSignal }, timeoutMs = 20 * 60_000) => remoteRun(remote, ['sudo', 'sh', '-c', script], { signal: ctx.signal, timeoutMs });

async function putFile(ctx: LabUpgradeContext, content: string, guestPath: string, mode = '0644'): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'labsmith-upgrade-'));
  try {
    await writeFile(join(dir, 'f'), content, { mode: 0o600 });
    await fileToRemote(ctx.remote, join(dir, 'f'), ['sudo', 'sh', '-c', `mkdir -p "$(dirname "$1")" && cat > "$1" && chmod ${mode} "$1"`, 'sh', guestPath], { signal: ctx.signal });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function canarySums(ctx: LabUpgradeContext): Promise<Record<string, string>> {
  if (!ctx.plan.volumeDirs.length) return {};
  const files = ctx.plan.volumeDirs.map((d) => `${d}/${UPGRADE_GUEST_PATHS.canary}`);
  const r = await remoteRun(ctx.remote, ['sudo', 'sha256sum', ...files], { allowFailure: true, signal: ctx.signal });
  return parseCanarySums(r.stdout, UPGRADE_GUEST_PATHS.canary);
}

/** Copies --artifacts DIR's debs and images into the guest's payload directory and indexes the debs, as the image build does. */
async function uploadArtifacts(ctx: LabUpgradeContext): Promise<void> {
  if (!ctx.uploads) return;
  for (const [name, file] of Object.entries(ctx.uploads).sort()) {
    await fileToRemote(ctx.remote, file, ['sudo', 'sh', '-c', 'mkdir -p "$(dirname "$1")" && cat > "$1"', 'sh', `${ctx.plan.payloadDir}/${name}`], { signal: ctx.signal });
  }
  await putFile(ctx, STAGED_INDEX_HOOK, '/usr/local/lib/labsmith/index-staged-upgrade.sh', '0755');
  await remoteRun(ctx.remote, ['sudo', '/usr/local/lib/labsmith/index-staged-upgrade.sh', '/'], { signal: ctx.signal });
}

export function labUpgradeSteps(ctx: LabUpgradeContext): UpgradeStepImpl {
  const { plan, remote } = ctx;
  const runCommands = async (step: PlannedStep) => {
    for (const c of step.commands.filter((x) => !x.startsWith('#'))) await sh(remote, c, ctx);
  };
  return {
    async baseline() {
      for (const d of plan.volumeDirs) await sh(remote, `head -c 4096 /dev/urandom > ${shellQuote(`${d}/${UPGRADE_GUEST_PATHS.canary}`)}`, ctx);
      return { canaries: await canarySums(ctx), suite: await ctx.runSuite('baseline') };
    },
    async rollbackPoint(step) {
      await mkdir(ctx.backupDir, { recursive: true, mode: 0o700 });
      // The etcd snapshot and the /etc/kubernetes tarball: what production must take (commands from the plan).
      for (const c of step.commands.filter((x) => !x.startsWith('#'))) await sh(remote, c, ctx);
      for (const file of [`etcd-pre-${plan.to}.db`, `etc-kubernetes-pre-${plan.to}.tar.gz`]) {
        await remoteToFile(remote, ['sudo', 'cat', `${UPGRADE_GUEST_PATHS.backupDir}/${file}`], join(ctx.backupDir, file), { signal: ctx.signal });
      }
      ctx.progress.info(`etcd snapshot and /etc/kubernetes tarball in ${ctx.backupDir}`);
      await ctx.vm.stop();
      await createSnapshot(ctx.vm.overlay, plan.snapshotTag);
      await ctx.vm.start();
    },
    async importImages(step) {
      await uploadArtifacts(ctx);
      await runCommands(step);
    },
    async migrateContainerd() {
      // The migration takes host paths of the pinned .debs: copied out of the guest's payload.
      const dir = await mkdtemp(join(tmpdir(), 'labsmith-containerd-'));
      try {
        const c = plan.packages.find((p) => p.name === 'containerd')!;
        const guestDeb = `${plan.payloadDir}/debs/${c.name}_${c.version.replace(/^\d+:/, '')}_amd64.deb`;
        const deb = join(dir, basename(guestDeb));
        await remoteToFile(remote, ['cat', guestDeb], deb, { signal: ctx.signal });
        await ctx.migrateContainerd({ remote, debs: [deb], kubernetesVersion: plan.kubernetesVersion, pins: [{ package: c.name, version: c.version, sha256: c.sha256 }], progress: ctx.progress, signal: ctx.signal });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    async kubeadm() {
      await putFile(ctx, renderUpgradeConfiguration({ kubernetesVersion: plan.kubernetesVersion }), UPGRADE_GUEST_PATHS.config);
      await putFile(ctx, renderUpgradeStepParams({
        targetMinor: plan.to, kubernetesVersion: plan.kubernetesVersion, packageVersion: plan.packageVersion, aptRepoUri: `file:${plan.payloadDir}/debs`, aptSourceOptions: 'trusted=yes',
        nodeName: plan.nodeName, drainTimeout: '5m', readyTimeout: '10m',
      }, { config: UPGRADE_GUEST_PATHS.config, aptSource: GUEST_KUBERNETES_APT_SOURCE, aptKeyring: GUEST_KUBERNETES_APT_KEYRING }), UPGRADE_GUEST_PATHS.params);
      await putFile(ctx, await readFile(join(REPO_ROOT, 'lab/upgrade/guest/upgrade-control-plane.sh'), 'utf8'), UPGRADE_GUEST_PATHS.script, '0755');
      // The image's deb822 source for the old minor would be read beside the new one (and is unreachable offline).
      await sh(remote, `rm -f /etc/apt/sources.list.d/kubernetes.sources && ${UPGRADE_GUEST_PATHS.script} ${UPGRADE_GUEST_PATHS.params}`, ctx, 45 * 60_000);
    },
    async addon(step) {
      await runCommands(step);
    },
    async after() {
      return { canaries: await canarySums(ctx), suite: await ctx.runSuite('after') };
    },
  };
}

/** `--dry-run` in the guest (pure): the target kubeadm unpacked from the payload (not installed) runs `upgrade apply --dry-run`, then is removed. */
export function renderGuestDryRunScript(plan: UpgradePlan, workDir = `/tmp/labsmith-kubeadm-${plan.to}`): string {
  const deb = `${plan.payloadDir}/debs/kubeadm_${plan.packageVersion.replace(/^\d+:/, '')}_amd64.deb`;
  const config = `${workDir}/kubeadm-upgrade.yaml`;
  const steps = [
    `rm -rf ${shellQuote(workDir)} && mkdir -p ${shellQuote(workDir)}`,
    `dpkg-deb -x ${shellQuote(deb)} ${shellQuote(`${workDir}/root`)}`,
    `printf '%s' ${shellQuote(renderUpgradeConfiguration({ kubernetesVersion: plan.kubernetesVersion }))} > ${shellQuote(config)}`,
    // The target's images are imported by the real run: a dry run must not need them.
    `${shellQuote(`${workDir}/root/usr/bin/kubeadm`)} upgrade apply --config ${shellQuote(config)} --dry-run --ignore-preflight-errors=ImagePull`,
  ].join(' && ');
  return `${steps}; rc=$?; rm -rf ${shellQuote(workDir)}; exit $rc`;
}

export async function dryRunInGuest(plan: UpgradePlan, remote: RemoteHost, signal?: AbortSignal): Promise<{ ok: boolean; output: string }> {
  const r = await remoteRun(remote, ['sudo', 'sh', '-c', renderGuestDryRunScript(plan)], { allowFailure: true, timeoutMs: 10 * 60_000, signal });
  return { ok: r.exitCode === 0, output: `${r.stdout}${r.stderr}` };
}

/** `--rollback`: stop, qemu-img snapshot -a, start, rerun the suite. */
export async function rollBackLab(opts: { vm: VmControl; tag: string; runSuite: () => Promise<SuiteOutcome>; progress: Progress }): Promise<SuiteOutcome> {
  opts.progress.start('Stopping the lab VM');
  await opts.vm.stop();
  opts.progress.end(true);
  opts.progress.start(`Rolling the disk back to ${opts.tag}`);
  await rollBackToSnapshot(opts.vm.overlay, opts.tag);
  opts.progress.end(true);
  opts.progress.start('Starting the lab VM');
  await opts.vm.start();
  opts.progress.end(true);
  return opts.runSuite();
}
