/**
 * lab:upgrade end to end where no cluster runs: the CLI against a lab that is not running (exit 3,
 * named), `--dry-run` against recorded facts (the plan and the runbook draft, exit 0), facts of an
 * OS-only lab (the pre-check names it, exit 1); and the executor's order, timings, downtime and
 * comparison through a step implementation that records what it is asked to do.
 */
import test from 'ava';
import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../core/exec.ts';
import { Progress } from '../../core/progress.ts';
import { fillDefaults } from '../../config/defaults.ts';
import { renderImageLock } from '../../images/lock/lock.ts';
import { emptyLock } from '../../images/lock/refresh.ts';
import type { TapReport } from '../../lab/acceptance/report.ts';
import { parseNodeFacts } from '../../lab/upgrade/facts.ts';
import { payloadFiles, planUpgrade } from '../../lab/upgrade/plan.ts';
import { executeUpgradePlan, renderGuestDryRunScript, type UpgradeStepImpl } from '../../lab/upgrade/run.ts';
import { throwawayLabYaml } from '../../lab/ports.ts';
import { makeDeb } from '../fixtures/apt-repo.ts';
import { missingCommand, testUnless, withTempDir } from '../helpers.ts';
import { inputs, RECORDED, TARGET } from '../fixtures/upgrade-facts.ts';

const TSX = join(process.cwd(), 'node_modules', '.bin', 'tsx');

async function labUpgrade(dir: string, args: string[]) {
  return run('nice', ['-n', '19', TSX, join(process.cwd(), 'scripts/lab-upgrade.ts'), '--config', join(dir, 'lab.yaml'), ...args], { allowFailure: true, timeoutMs: 120_000, cwd: dir });
}

async function setUp(dir: string) {
  await writeFile(join(dir, 'lab.yaml'), await throwawayLabYaml('upg', join(dir, 'state')));
  const lock = emptyLock(fillDefaults({}, dir));
  lock.target = TARGET;
  await writeFile(join(dir, 'image.lock.json'), renderImageLock(lock));
}

test('lab:upgrade against a lab that is not running: exit 3, naming the lab and what to do', async (t) => {
  await withTempDir(async (dir) => {
    await setUp(dir);
    const r = await labUpgrade(dir, ['--to', '1.38', '--dry-run']);
    t.is(r.exitCode, 3, r.stderr);
    t.regex(r.stderr, /lab upg is not running/);
    t.regex(r.stderr, /npm run lab:up/);
    const bad = await labUpgrade(dir, ['--to', '1.38.1']);
    t.is(bad.exitCode, 2);
    t.regex(bad.stderr, /--to: "1\.38\.1" is a patch release/);
  });
});

test('lab:upgrade --dry-run against recorded facts prints the plan and writes the runbook draft; an OS-only lab fails its pre-check', async (t) => {
  await withTempDir(async (dir) => {
    await setUp(dir);
    const staged = Object.fromEntries(payloadFiles(TARGET).map((f) => [`1.38/${f}`, 2 ** 20]));
    const facts = { ...parseNodeFacts(RECORDED, '/var/lib/labsmith/volumes'), stagedFiles: staged };
    await writeFile(join(dir, 'facts.json'), JSON.stringify(facts));
    const r = await labUpgrade(dir, ['--to', '1.38', '--dry-run', '--facts', join(dir, 'facts.json'), '--lock', join(dir, 'image.lock.json'), '--runbook', join(dir, 'runbook.md')]);
    t.is(r.exitCode, 0, r.stderr + r.stdout);
    t.regex(r.stdout, /^Upgrade plan: Kubernetes v1\.37\.2 → v1\.38\.1 \(packages 1\.38\.1-1\.1\) on node lab$/m);
    t.regex(r.stdout, /4\. Moving containerd 1\.7\.24 → 2\.1\.9\+ds1-5 \(forky\)  \[disruptive\]/);
    t.regex(r.stdout, /kubeadm upgrade apply --dry-run: not run \(planned from --facts, no guest\)/);
    t.regex(await readFile(join(dir, 'runbook.md'), 'utf8'), /^# Runbook: Kubernetes v1\.37\.2 → v1\.38\.1\n\nNot rehearsed yet/);

    const noPayload = await labUpgrade(dir, ['--to', '1.38', '--facts', join(dir, 'facts.json'), '--lock', join(dir, 'image.lock.json'), '--artifacts', join(dir, 'nothing-here')]);
    t.is(noPayload.exitCode, 1);
    t.regex(noPayload.stdout, /pre-check problem\(s\); nothing was changed/);
    t.regex(noPayload.stdout, /\[inputs\] --artifacts .*nothing-here has no debs\/kubeadm_1\.38\.1-1\.1_amd64\.deb/);
    t.regex(noPayload.stdout, /\[inputs\] the Kubernetes 1\.38 upgrade payload is incomplete: 6 input\(s\) could not be had:\n +- target package kubeadm 1\.38\.1-1\.1: .*nothing-here\/files\/.* is missing from the artifacts directory/);

    await writeFile(join(dir, 'os-only.json'), JSON.stringify(parseNodeFacts({ ...RECORDED, packages: { exitCode: 0, stdout: 'containerd 1.7.24~ds1-6+b4 installed\n', stderr: '' } }, '/v')));
    const os = await labUpgrade(dir, ['--to', '1.38', '--facts', join(dir, 'os-only.json'), '--lock', join(dir, 'image.lock.json')]);
    t.is(os.exitCode, 1);
    t.regex(os.stdout, /\[cluster\] lab upg has no cluster to upgrade: kubeadm is not installed: an OS-only lab has no cluster to upgrade/);
  });
});

const tap = (names: [string, boolean][]): TapReport => ({ ok: names.every(([, o]) => o), count: names.length, pass: 0, fail: 0, skip: 0, todo: 0, bailout: false, tests: names.map(([name, ok], i) => ({ id: i + 1, name, ok, skip: false, todo: false, durationMs: 1, diag: null })) });

function recorder(opts: { failAt?: string; afterRegresses?: boolean; canaryLost?: boolean } = {}) {
  const calls: string[] = [];
  const step = (name: string, result?: unknown) => async (s: { id: string }) => {
    calls.push(`${name}:${s.id}`);
    if (opts.failAt === s.id) throw new Error(`${s.id} broke`);
    return result as never;
  };
  const impl: UpgradeStepImpl = {
    baseline: step('baseline', { suite: { report: tap([['node-ready', true], ['tls', true]]), summary: '' }, canaries: { '/v/a': 'a'.repeat(64) } }),
    rollbackPoint: step('rollbackPoint'),
    importImages: step('importImages'),
    migrateContainerd: step('migrateContainerd'),
    kubeadm: step('kubeadm'),
    addon: step('addon'),
    after: step('after', { suite: { report: tap([['node-ready', true], ['tls', !opts.afterRegresses]]), summary: '' }, canaries: opts.canaryLost ? {} : { '/v/a': 'a'.repeat(64) } }),
  };
  return { impl, calls };
}

/** A clock that moves 10 s per reading: each step lasts 10 s. */
const ticking = () => { let t = 0; return () => (t += 10_000); };

test('the executor runs the planned steps in order through the implementation, measures each, sums the disruptive ones as the downtime window', async (t) => {
  const plan = planUpgrade(inputs());
  const { impl, calls } = recorder();
  const result = await executeUpgradePlan(plan, impl, { progress: new Progress('plain', () => undefined), labName: 'lab', now: ticking() });
  t.deepEqual(calls, ['baseline:baseline', 'rollbackPoint:rollback-point', 'importImages:import-images', 'migrateContainerd:containerd', 'kubeadm:kubeadm', 'after:after'], 'noop add-ons call nothing');
  t.true(result.ok);
  t.is(result.measurements.stepSeconds.kubeadm, 10);
  t.is(result.measurements.downtimeSeconds, 30, 'rollback point, containerd and kubeadm are disruptive');
  t.is(result.canaries.count, 1);
});

test('a regression or a lost canary makes the result not ok; a failed step after the rollback point names the rollback', async (t) => {
  const plan = planUpgrade(inputs());
  const quiet = { progress: new Progress('plain', () => undefined), labName: 'lab', now: ticking() };
  const regressed = await executeUpgradePlan(plan, recorder({ afterRegresses: true }).impl, quiet);
  t.false(regressed.ok);
  t.deepEqual(regressed.comparison.regressions, ['tls']);
  t.false((await executeUpgradePlan(plan, recorder({ canaryLost: true }).impl, quiet)).canaries.ok);
  const early = await t.throwsAsync(executeUpgradePlan(plan, recorder({ failAt: 'baseline' }).impl, quiet));
  t.regex(early!.message, /baseline\) failed: baseline broke/);
  t.regex((early as { hint?: string }).hint!, /nothing of Kubernetes was changed yet/);
  const { impl, calls } = recorder({ failAt: 'kubeadm' });
  const late = await t.throwsAsync(executeUpgradePlan(plan, impl, quiet));
  t.regex((late as { hint?: string }).hint!, /lab:upgrade -- --rollback/);
  t.false(calls.includes('after:after'), 'nothing runs after the failed step');
});

testUnless(missingCommand('dpkg-deb'), "--dry-run's guest script unpacks the target kubeadm from the payload, runs upgrade apply --dry-run with the UpgradeConfiguration, and removes it (run here with sh)", async (t) => {
  await withTempDir(async (dir) => {
    const payloadDir = join(dir, 'payload');
    // FIXTURE kubeadm: records its argv and the config it was given; exits 1 for FIXTURE_FAIL.
    const kubeadm = '#!/bin/sh\nprintf \'%s\\n\' "$*" > "$FIXTURE_CALLS"\ncat "$4" >> "$FIXTURE_CALLS"\n[ -z "${FIXTURE_FAIL:-}" ] || { echo "[upgrade/version] FATAL: fixture refusal" >&2; exit 1; }\necho "[dryrun] Would upgrade"\n';
    const deb = await makeDeb(join(dir, 'build'), 'kubeadm', '1.38.1-1.1', undefined, { files: { 'usr/bin/kubeadm': { content: kubeadm, mode: 0o755 } } });
    await mkdir(join(payloadDir, 'debs'), { recursive: true });
    await cp(deb, join(payloadDir, 'debs', 'kubeadm_1.38.1-1.1_amd64.deb'));
    const plan = { ...planUpgrade(inputs()), payloadDir };
    const work = join(dir, 'work dir');
    const calls = join(dir, 'calls');
    const r = await run('sh', ['-c', renderGuestDryRunScript(plan, work)], { env: { FIXTURE_CALLS: calls }, allowFailure: true });
    t.is(r.exitCode, 0, r.stderr);
    t.regex(r.stdout, /\[dryrun\] Would upgrade/);
    const recorded = await readFile(calls, 'utf8');
    t.true(recorded.startsWith(`upgrade apply --config ${work}/kubeadm-upgrade.yaml --dry-run --ignore-preflight-errors=ImagePull\n`), recorded);
    t.regex(recorded, /kind: UpgradeConfiguration\napply:\n {2}kubernetesVersion: v1\.38\.1\n {2}imagePullPolicy: Never/);
    t.false(existsSync(work), 'the unpacked kubeadm is removed');
    const refused = await run('sh', ['-c', renderGuestDryRunScript(plan, work)], { env: { FIXTURE_CALLS: calls, FIXTURE_FAIL: '1' }, allowFailure: true });
    t.is(refused.exitCode, 1, 'kubeadm\'s refusal is the dry run\'s result');
    t.regex(refused.stderr, /fixture refusal/);
    t.false(existsSync(work));
  });
});
