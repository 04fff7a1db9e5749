/**
 * The acceptance suite after a restore: on a machine without Kubernetes the cluster checks are
 * reported as not run (never as passed, and not as failures), a lab's suite still fails them;
 * the restore's verdict (green, counts, what did not run and why, files, bundle); the drill's
 * data check run through sh and the real sha256sum; the drill report's renderer (pure).
 */
import test from 'ava';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { run } from '../../core/exec.ts';
import { sha256File } from '../../core/hash.ts';
import type { UserCheck } from '../../config/lab-config.ts';
import type { AcceptanceContext } from '../../lab/acceptance/context.ts';
import { NO_KUBERNETES_ON_TARGET } from '../../lab/acceptance/context.ts';
import { CLUSTER_CHECKS, runAcceptanceSuite } from '../../lab/acceptance/suite.ts';
import { drillPassed, renderDrillDataCheck, renderDrillReport, type DrillReport } from '../../lab/restore/drill.ts';
import { acceptanceContextForRestoredServer, GREEN_WITHOUT_KUBERNETES, renderRestoreSuiteLines, summarizeRestoreSuite, type RestoreSuiteOutcome } from '../../lab/restore/restore-suite.ts';
import { renderSshArgs } from '../../lab/ssh.ts';
import { throwawayLabConfig, withTempDir } from '../helpers.ts';

/** A TCP server on loopback that greets: the one check of these suites that really runs. */
async function greeter(): Promise<{ port: number; server: Server }> {
  const server = createServer((s) => s.end('220 restored\r\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as AddressInfo).port, server };
}

const noKubernetes = (): AcceptanceContext => ({
  address: '127.0.0.1', ports: {}, caCert: '', tlsName: 'localhost', dnsDomain: 'cluster.local', ingressDomain: 'drill.test', trustsLabCa: false,
  cluster: { missing: NO_KUBERNETES_ON_TARGET, noKubernetes: true },
});

const tcp = (name: string, port: number, banner: string): UserCheck => ({ name, type: 'tcp', port, banner, timeoutSeconds: 5, retries: 0 });

test('without Kubernetes on the machine, a restore suite reports every cluster check as not run; a lab suite fails them', async (t) => {
  const { port, server } = await greeter();
  try {
    await withTempDir(async (dir) => {
      const restore = await runAcceptanceSuite({ ctx: noKubernetes(), name: 'restored', reportDir: join(dir, 'restore'), userChecks: [tcp('greets', port, '^220 restored')], withoutKubernetes: 'not-run' });
      const clusterPoints = restore.report.tests.filter((p) => CLUSTER_CHECKS.some((c) => p.name.startsWith(`${c.id}: `)));
      t.is(clusterPoints.length, CLUSTER_CHECKS.length);
      for (const p of clusterPoints) t.is(p.skip, `not run: ${NO_KUBERNETES_ON_TARGET}`, p.name);
      t.is(restore.report.fail, 0);
      t.is(restore.report.pass, 1, 'only the user check ran and passed: nothing skipped counts as passed');
      const outcome = summarizeRestoreSuite(restore, true);
      t.true(outcome.green);
      t.is(outcome.meaning, GREEN_WITHOUT_KUBERNETES);
      t.deepEqual(outcome.counts, { total: restore.report.count, passed: 1, failed: 0, notRun: restore.report.count - 1 });
      t.like(outcome.notRun.find((n) => n.reason.startsWith('not run:')), { count: CLUSTER_CHECKS.length });
      // The files are the suite's own, on disk.
      t.regex(await readFile(outcome.files.junit, 'utf8'), new RegExp(`<skipped message="not run: ${NO_KUBERNETES_ON_TARGET.replace(/[()]/g, '\\$&')}"/>`));
      t.is(JSON.parse(await readFile(outcome.files.json, 'utf8')).counts.fail, 0);
      t.is(outcome.bundle, undefined);

      // The default (a lab's suite): the same checks are failures naming the reason.
      const lab = await runAcceptanceSuite({ ctx: noKubernetes(), name: 'lab', reportDir: join(dir, 'lab'), userChecks: [tcp('greets', port, '^220 restored')] });
      t.is(lab.report.fail, CLUSTER_CHECKS.length);
      t.false(summarizeRestoreSuite(lab, true).green);

      // A failing user check turns a restore suite red, with a failure bundle.
      const red = await runAcceptanceSuite({ ctx: noKubernetes(), name: 'restored', reportDir: join(dir, 'red'), userChecks: [tcp('greets', port, '^220 something else')], withoutKubernetes: 'not-run' });
      const redOutcome = summarizeRestoreSuite(red, true);
      t.false(redOutcome.green);
      t.deepEqual(redOutcome.failed.map((f) => f.split(':')[0]), ['user/greets']);
      t.true(existsSync(redOutcome.bundle!), 'the failure bundle is written');
      t.true(renderRestoreSuiteLines(redOutcome).some((l) => l.includes(`failure bundle: ${redOutcome.bundle}`)));

      // A suite in which nothing ran proves nothing: not green.
      const empty = await runAcceptanceSuite({ ctx: noKubernetes(), name: 'restored', reportDir: join(dir, 'empty'), withoutKubernetes: 'not-run' });
      t.is(empty.report.fail, 0);
      t.false(summarizeRestoreSuite(empty, true).green);
    });
  } finally {
    server.close();
  }
});

test("the drill's data check: sha256sum --check of every restored file passes on the backup's sums, and names the one that differs", async (t) => {
  await withTempDir(async (dir) => {
    const storage = join(dir, 'volumes');
    const paths = ['mail/maildir/cur/1700000000.M1P2.mx:2,S', 'web/site/with space.txt', 'web/site/index.html'];
    for (const p of paths) {
      await mkdir(join(storage, p, '..'), { recursive: true });
      await writeFile(join(storage, p), `content of ${p}\n`);
    }
    const files = await Promise.all(paths.map(async (path) => ({ path, bytes: 0, sha256: await sha256File(join(storage, path)) })));
    const check = renderDrillDataCheck(storage, files);
    t.like(check, { type: 'command', exitCode: 0, name: 'restored-data-sha256' });
    // The guest has sudo; here the test runs as root, so a pass-through stands in for it.
    const bin = join(dir, 'bin');
    await mkdir(bin);
    await writeFile(join(bin, 'sudo'), '#!/bin/sh\nexec "$@"\n', { mode: 0o755 });
    const runIt = () => run('sh', ['-c', check.run], { allowFailure: true, env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
    const good = await runIt();
    t.is(good.exitCode, 0, good.stderr);
    t.regex(good.stdout, new RegExp(check.output!, 'm'));
    await writeFile(join(storage, 'web/site/with space.txt'), 'changed\n');
    const bad = await runIt();
    t.not(bad.exitCode, 0);
    t.regex(bad.stdout, /with space\.txt: FAILED/);
    t.notRegex(bad.stdout, new RegExp(check.output!, 'm'), 'the output pattern needs every file OK');
  });
});

const SUITE: RestoreSuiteOutcome = {
  green: true,
  counts: { total: 31, passed: 9, failed: 0, notRun: 22 },
  notRun: [{ reason: `not run: ${NO_KUBERNETES_ON_TARGET}`, count: 21 }, { reason: 'not applicable: a machine from the server seed trusts no lab CA', count: 1 }],
  failed: [],
  meaning: GREEN_WITHOUT_KUBERNETES,
  files: { tap: '/d/suite/results.tap', junit: '/d/suite/junit.xml', json: '/d/suite/results.json' },
  leftovers: [],
};

const REPORT: DrillReport = {
  rtoToVerifiedDataSeconds: 412,
  rtoToGreenSuiteSeconds: 431,
  backupBytes: 8_400_000,
  filesChecked: 4,
  dataBytes: 8_388_700,
  checks: [{ what: 'the root filesystem grew to the new disk', ok: true, detail: '25 GB' }],
  suite: SUITE,
  hardware: { before: '20GiB virtio disk', after: '24GiB nvme disk' },
};

test('drill report: both RTOs, the backup size, every check, the suite counts, what did not run and why, and its files', (t) => {
  const text = renderDrillReport(REPORT);
  t.true(drillPassed(REPORT));
  t.regex(text, /^restore drill: PASSED\n/);
  t.regex(text, /to verified data: 412s; to a green acceptance suite: 431s/);
  t.regex(text, /backup: 8400000 bytes; data: 8388700 bytes in 4 files/);
  t.regex(text, /✓ the root filesystem grew to the new disk: 25 GB/);
  t.regex(text, /acceptance suite: green: 9 passed, 0 failed, 22 not run \(of 31\)/);
  t.regex(text, /not run \(21\): not run: the restored machine has no Kubernetes/);
  t.regex(text, /green means: no Kubernetes on the machine .* the cluster checks did not run and are not counted as passed/);
  t.regex(text, /reports: \/d\/suite\/results\.tap, \/d\/suite\/junit\.xml, \/d\/suite\/results\.json/);
  t.notRegex(text, /failure bundle/);
});

test('drill report: a red suite fails the drill, with no RTO to green and the failure bundle; a failed check fails it too', (t) => {
  const red: DrillReport = { ...REPORT, rtoToGreenSuiteSeconds: undefined, suite: { ...SUITE, green: false, counts: { ...SUITE.counts, passed: 8, failed: 1 }, failed: ['user/restored-data-sha256: in the guest'], bundle: '/d/suite/bundle-x' } };
  const text = renderDrillReport(red);
  t.false(drillPassed(red));
  t.regex(text, /^restore drill: FAILED\n/);
  t.regex(text, /to a green acceptance suite: not reached \(the suite is red\)/);
  t.regex(text, /acceptance suite: RED: 8 passed, 1 failed/);
  t.regex(text, /failed: user\/restored-data-sha256/);
  t.regex(text, /failure bundle: \/d\/suite\/bundle-x/);
  const badCheck: DrillReport = { ...REPORT, checks: [{ what: 'the disk is on the nvme bus', ok: false, detail: '/dev/vda' }] };
  t.false(drillPassed(badCheck));
  t.regex(renderDrillReport(badCheck), /^restore drill: FAILED\n[\s\S]*✗ the disk is on the nvme bus: \/dev\/vda/);
});

test('lab:restore --host: the suite reaches the server over SSH with its key; with a kubeconfig its ingress on 80/443; an unreadable --ca is named', async (t) => {
  await withTempDir(async (dir) => {
    const config = await throwawayLabConfig('restore-ctx', dir);
    await writeFile(join(dir, 'ca.crt'), 'PEM');
    const target = { user: 'admin', host: '203.0.113.10', port: 22, identityFile: join(dir, 'key'), knownHostsFile: join(dir, 'known_hosts') };
    const ctx = await acceptanceContextForRestoredServer(config, target, { caFile: join(dir, 'ca.crt'), kubeconfig: join(dir, 'admin.conf') });
    t.like(ctx, { address: '203.0.113.10', ports: { http: 80, https: 443 }, caCert: 'PEM', trustsLabCa: false, ssh: target });
    t.regex(String((ctx.cluster as { missing: string }).missing), /no kubeconfig at .*admin\.conf/);
    t.false('noKubernetes' in ctx.cluster, 'an unreachable cluster is not "no Kubernetes": its checks fail');
    t.true(renderSshArgs(ctx.ssh!).includes(`UserKnownHostsFile=${join(dir, 'known_hosts')}`));
    t.deepEqual(renderSshArgs(ctx.ssh!).slice(0, 2), ['-i', join(dir, 'key')]);
    await t.throwsAsync(acceptanceContextForRestoredServer(config, target, { caFile: join(dir, 'nope.crt'), kubeconfig: join(dir, 'admin.conf') }), { message: /--ca .*nope\.crt cannot be read/ });
  });
});
