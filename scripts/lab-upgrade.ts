#!/usr/bin/env -S npx tsx
// npm run lab:upgrade -- --to MINOR [--dry-run] [--artifacts DIR] [--rollback] [--facts FILE] [--save-facts FILE] [--runbook FILE]
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { resolveTargetInputs } from '../images/artifacts/store.ts';
import { dirname, join, resolve } from 'node:path';
import { LabError } from '../core/errors.ts';
import { runMain } from '../core/main.ts';
import { cacheRoot, LAB_FILES, STAGED_UPGRADE_PATHS } from '../core/paths.ts';
import { kubernetesMinorProblem } from '../config/formats.ts';
import { loadLabConfig } from '../config/load.ts';
import { CALICO } from '../cloud-init/addons/calico.ts';
import { CERT_MANAGER } from '../cloud-init/addons/cert-manager.ts';
import { LOCAL_PATH } from '../cloud-init/addons/local-path.ts';
import { TRAEFIK_IMAGE } from '../cloud-init/addons/bundle.ts';
import { DEFAULT_LOCK_FILE, readImageLock, type ImageLock } from '../images/lock/lock.ts';
import { acceptanceContextForLab } from '../lab/acceptance/context.ts';
import { runAcceptanceSuite } from '../lab/acceptance/suite.ts';
import { remoteForLab } from '../lab/backup/remote.ts';
import { getDriver } from '../lab/drivers/index.ts';
import { readLabState } from '../lab/state.ts';
import { gatherUpgradeFacts, stagedPayloadFiles, type NodeFacts } from '../lab/upgrade/facts.ts';
import { artifactsPayloadNames, planUpgrade, renderPrecheckProblems, renderUpgradePlan, runUpgradePrechecks, type UpgradePayload } from '../lab/upgrade/plan.ts';
import type { ManifestFile, PrecheckProblem } from '../lab/upgrade/prechecks.ts';
import { renderRunbook } from '../lab/upgrade/runbook.ts';
import { dryRunInGuest, executeUpgradePlan, labUpgradeSteps, rollBackLab, type LabUpgradeContext } from '../lab/upgrade/run.ts';
import { migrateContainerdInGuest } from '../lab/upgrade/containerd-migration.ts';
import { labVmControl } from '../lab/upgrade/vm-control.ts';

/**
 * --artifacts DIR (image:fetch-artifacts' layout): the target's inputs verified against the lock.
 * What is missing or wrong becomes one pre-check problem naming every input, not a throw.
 */
async function artifactsPayload(lock: ImageLock, minor: string, dir: string, signal: AbortSignal): Promise<{ payload?: UpgradePayload; uploads: Record<string, string>; problem?: PrecheckProblem }> {
  if (!lock.target || lock.target.kubernetes.minor !== minor) return { uploads: {} };
  try {
    const resolved = await resolveTargetInputs(lock, minor, { artifactsDir: dir, storeDir: join(cacheRoot(), 'artifacts'), signal });
    const uploads = artifactsPayloadNames(lock.target, resolved);
    const files: Record<string, number> = {};
    for (const [name, file] of Object.entries(uploads)) files[name] = (await stat(file)).size;
    return { payload: { kind: 'artifacts', dir, files }, uploads };
  } catch (error) {
    if (!(error instanceof LabError) || signal.aborted) throw error;
    return { uploads: {}, payload: { kind: 'artifacts', dir, files: {} }, problem: { check: 'inputs', message: error.message, hint: error.hint ?? 'refill DIR with image:fetch-artifacts' } };
  }
}

/** The user's manifests (lab.yaml workloads:), every .yaml/.yml file of each directory. */
async function readWorkloadManifests(configFile: string, sources: { path: string }[]): Promise<ManifestFile[]> {
  const files: ManifestFile[] = [];
  for (const s of sources) {
    const dir = resolve(dirname(resolve(configFile)), s.path);
    for (const name of (await readdir(dir).catch(() => [] as string[])).sort()) {
      if (/\.ya?ml$/.test(name)) files.push({ path: join(s.path, name), text: await readFile(join(dir, name), 'utf8') });
    }
  }
  return files;
}

runMain(
  {
    string: ['config', 'lock', 'to', 'artifacts', 'facts', 'save-facts', 'runbook'],
    boolean: ['dry-run', 'rollback'],
    usage: `
npm run lab:upgrade -- --to MINOR [options]
  --to MINOR          the next Kubernetes minor, e.g. 1.38 (one minor at a time)
  --dry-run           pre-checks, the plan, and kubeadm upgrade apply --dry-run in the guest; changes nothing
  --artifacts DIR     the target's payload from DIR (image:fetch-artifacts' layout, verified against the lock) instead of the image's staged one
  --rollback          stop the lab, return its disk to the snapshot taken before the upgrade, start, run the suite
  --facts FILE        plan from facts recorded earlier (--save-facts) instead of the running lab (implies --dry-run)
  --save-facts FILE   write the facts gathered from the lab to FILE
  --runbook FILE      where the production runbook goes (default: report/upgrade-MINOR-runbook.md in the lab directory)
  --config FILE       lab config (default: lab.yaml)
  --lock FILE         the lock with the target section (default: ${DEFAULT_LOCK_FILE}; image:lock --kubernetes MINOR)
  --json              one JSON event per line
  --verbose           stack traces on errors`,
  },
  async ({ args, progress, signal }) => {
    const configFile = args.config ?? 'lab.yaml';
    const config = await loadLabConfig(configFile, { purpose: 'existing' });
    const to = args.to === undefined ? undefined : String(args.to);
    if (!args.rollback && !to) throw new LabError('--to MINOR is required', 'for example npm run lab:upgrade -- --to 1.38 --dry-run', 2);
    const minorProblem = to ? kubernetesMinorProblem(to) : undefined;
    if (minorProblem) throw new LabError(`--to: ${minorProblem}`, 'for example --to 1.38', 2);

    let facts: NodeFacts;
    let live: { remote: ReturnType<typeof remoteForLab>; state: NonNullable<Awaited<ReturnType<typeof readLabState>>> } | undefined;
    if (args.facts) {
      facts = JSON.parse(await readFile(resolve(args.facts), 'utf8')) as NodeFacts;
    } else {
      const state = await readLabState(config.stateDir);
      const driver = getDriver(state?.driver ?? 'qemu');
      if (!state || !(await driver.status(state, config.stateDir)).running) {
        throw new LabError(`lab ${config.name} is not running (${config.stateDir})`, 'start it with npm run lab:up, or plan against recorded facts with --facts FILE', 3);
      }
      if (state.driver !== 'qemu') throw new LabError(`lab:upgrade snapshots qemu labs; lab ${config.name} runs on ${state.driver}`, 'use a qemu lab for the rehearsal (the driver\'s disk snapshot is not implemented for libvirt yet)', 2);
      live = { remote: remoteForLab(config.stateDir, state.sshUser, driver.sshEndpoint(state)), state };
      const runSuite = async (label: string) => {
        const run = await runAcceptanceSuite({ ctx: await acceptanceContextForLab(config, driver), name: `lab ${config.name} (${label})`, reportDir: join(config.stateDir, LAB_FILES.report, `upgrade-${label}`), signal, userChecks: config.checks });
        return { report: run.report, summary: run.summary };
      };
      if (args.rollback) {
        const tag = `labsmith-pre-${to ?? (await readFile(join(config.stateDir, 'upgrade-target'), 'utf8').catch(() => '')).trim()}`;
        const suite = await rollBackLab({ vm: labVmControl({ driver, state: live.state, stateDir: config.stateDir, overlay: join(config.stateDir, LAB_FILES.overlay), remote: live.remote, signal }), tag, runSuite: () => runSuite('rollback'), progress });
        process.stdout.write(suite.summary);
        return suite.report.fail === 0 && !suite.report.bailout ? 0 : 1;
      }
      progress.start(`Gathering facts from lab ${config.name}`);
      facts = await gatherUpgradeFacts(live.remote, config.addons.storageDir, signal);
      progress.end(true);
      if (args['save-facts']) await writeFile(resolve(args['save-facts']), `${JSON.stringify(facts, null, 2)}\n`, { mode: 0o600 });
    }
    const target = to!;
    const lock = await readImageLock(resolve(args.lock ?? DEFAULT_LOCK_FILE));
    let payload: UpgradePayload | undefined;
    let uploads: Record<string, string> = {};
    let artifactsProblem: PrecheckProblem | undefined;
    if (args.artifacts) ({ payload, uploads, problem: artifactsProblem } = await artifactsPayload(lock, target, resolve(args.artifacts), signal));
    else {
      const files = stagedPayloadFiles(facts, target);
      if (files) payload = { kind: 'staged', dir: `/${STAGED_UPGRADE_PATHS.dir}/${target}`, files };
    }
    const inputs = {
      targetMinor: target,
      target: lock.target,
      currentAddons: { calico: CALICO.version, 'cert-manager': CERT_MANAGER.version, 'local-path': LOCAL_PATH.version, traefik: TRAEFIK_IMAGE.split(':').pop()! },
      facts,
      payload,
      workloadManifests: await readWorkloadManifests(configFile, config.workloads),
      storageDir: config.addons.storageDir,
      labName: config.name,
      snapshotTag: `labsmith-pre-${target}`,
    };
    progress.start('Running the pre-checks');
    const problems = [...(artifactsProblem ? [artifactsProblem] : []), ...runUpgradePrechecks(inputs)];
    progress.end(problems.length === 0, problems.length ? `${problems.length} problem(s)` : 'all passed');
    if (problems.length) {
      process.stdout.write(renderPrecheckProblems(problems));
      return 1;
    }
    const plan = planUpgrade(inputs);
    const runbookFile = resolve(args.runbook ?? join(config.stateDir, LAB_FILES.report, `upgrade-${target}-runbook.md`));
    await mkdir(dirname(runbookFile), { recursive: true });

    if (args['dry-run'] || args.facts) {
      process.stdout.write(renderUpgradePlan(plan));
      await writeFile(runbookFile, renderRunbook(plan));
      process.stdout.write(`runbook (not rehearsed): ${runbookFile}\n`);
      if (!live) {
        process.stdout.write('kubeadm upgrade apply --dry-run: not run (planned from --facts, no guest)\n');
        return 0;
      }
      progress.start('kubeadm upgrade apply --dry-run (the target kubeadm, unpacked from the payload)');
      const dry = await dryRunInGuest(plan, live.remote, signal);
      progress.end(dry.ok);
      process.stdout.write(dry.output);
      return dry.ok ? 0 : 1;
    }

    const driver = getDriver(live!.state.driver);
    const ctx: LabUpgradeContext = {
      plan,
      remote: live!.remote,
      vm: labVmControl({ driver, state: live!.state, stateDir: config.stateDir, overlay: join(config.stateDir, LAB_FILES.overlay), remote: live!.remote, signal }),
      backupDir: join(config.stateDir, 'upgrade-backup'),
      uploads,
      runSuite: async (label) => {
        const run = await runAcceptanceSuite({ ctx: await acceptanceContextForLab(config, driver), name: `lab ${config.name} (${label})`, reportDir: join(config.stateDir, LAB_FILES.report, `upgrade-${label}`), signal, userChecks: config.checks });
        return { report: run.report, summary: run.summary };
      },
      migrateContainerd: migrateContainerdInGuest,
      progress,
      signal,
    };
    await writeFile(join(config.stateDir, 'upgrade-target'), `${target}\n`);
    const result = await executeUpgradePlan(plan, labUpgradeSteps(ctx), { progress, labName: config.name, signal });
    await writeFile(runbookFile, renderRunbook(plan, result.measurements));
    process.stdout.write([
      `Kubernetes ${plan.from} → ${plan.kubernetesVersion} on lab ${config.name}: ${result.ok ? 'no regression' : 'REGRESSED'}`,
      `  suite: ${result.comparison.regressions.length ? `regressions: ${result.comparison.regressions.join(', ')}` : 'every check that passed before passes after'}`,
      `  canaries: ${result.canaries.ok ? `${result.canaries.count} intact` : result.canaries.problems.join('; ')}`,
      `  downtime window: ${Math.round(result.measurements.downtimeSeconds)} s`,
      `  runbook for production: ${runbookFile}`,
      `  roll back: npm run lab:upgrade -- --rollback --to ${target}`,
      '',
    ].join('\n'));
    return result.ok ? 0 : 1;
  },
);
