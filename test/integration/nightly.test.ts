/**
 * Two nightlies for real (OS-only here: pkgs.k8s.io is unreachable): the first refreshes the
 * lock, builds (cached layers are fine), archives the inputs, boots the lab once, runs the
 * acceptance suite, tears down and publishes; the second, on the unchanged lock, says "no change"
 * without building or booting. One boot in all; the third night (a changed input) is run by hand.
 */
import { existsSync, readlinkSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Progress } from '../../core/progress.ts';
import { parseSha256Sums } from '../../images/manifest.ts';
import { sha256File } from '../../core/hash.ts';
import { readImageLock, renderImageLock } from '../../images/lock/lock.ts';
import type { NightSummary } from '../../nightly/diff/load.ts';
import { NIGHT_FILES, NIGHTS_DIR_FILES } from '../../nightly/night-files.ts';
import { LAST_RUN_FILES, runNightly } from '../../nightly/run.ts';
import { missingCommand, notRoot, qemuProcessesUnder, testUnless, throwawayLabConfig, withTempDir } from '../helpers.ts';

const reason = notRoot() ?? missingCommand('mmdebstrap', 'qemu-system-x86_64', 'qemu-img', 'xorriso', 'ssh', 'openssl', 'xz', 'dpkg-deb', 'gpgv');


testUnless(reason, 'nightly: a green OS-only night is built, booted, checked and published; the next run on the same lock is "no change"', async (t) => {
  t.timeout(90 * 60_000);
  await withTempDir(async (dir) => {
    const config = await throwawayLabConfig('it-night', dir);
    const out = join(dir, 'nights');
    const progress = new Progress('plain', (line) => process.stderr.write(`[it-nightly] ${line}`));
    const repoLock = join(import.meta.dirname, '../../image.lock.json');
    const repoLockBefore = await readFile(repoLock, 'utf8');

    const first = await runNightly({ config, outDir: out, repoLock, progress });
    t.is(first.outcome, 'green', first.reportMarkdown);
    t.is(first.exitCode, 0);
    const night = join(out, first.plan.kind === 'build' ? first.plan.night : '?');
    t.regex(night, /\/\d{4}-\d{2}-\d{2}(-\d+)?$/);
    for (const f of Object.values(NIGHT_FILES).filter((f) => f !== NIGHT_FILES.log)) t.true(existsSync(join(night, f)), `${f} is published`);
    const sums = parseSha256Sums(await readFile(join(night, NIGHT_FILES.sums), 'utf8'));
    t.is(sums[NIGHT_FILES.image], await sha256File(join(night, NIGHT_FILES.image)), 'SHA256SUMS matches the published image');
    t.is(readlinkSync(join(out, NIGHTS_DIR_FILES.latest)), first.plan.kind === 'build' ? first.plan.night : '', 'latest points at the green night');
    const summary = JSON.parse(await readFile(join(night, NIGHT_FILES.night), 'utf8')) as NightSummary;
    t.true(summary.osOnly);
    t.regex(summary.osOnlyReason ?? '', /no Kubernetes packages/);
    t.true(summary.verdict.passed > 0 && summary.verdict.notApplicable > 0, JSON.stringify(summary.verdict));
    t.true(summary.timings.bootSeconds.bootToSsh! > 0);
    const report = await readFile(join(night, NIGHT_FILES.reportMarkdown), 'utf8');
    t.regex(report, /^# Nightly \S+: green\n\n🟢 green: \d+\/\d+ checks passed, \d+ not applicable \(OS-only\)/);
    t.regex(report, /Profile: OS-only/);
    t.regex(report, /\| kernel \| — \| \*\*linux-image-/, 'the first night lists its pinned components');
    const packages = JSON.parse(await readFile(join(night, NIGHT_FILES.packages), 'utf8')) as { suite?: string; source: string }[];
    t.true(packages.every((p) => p.suite), 'every package has an origin');
    t.true(existsSync(join(out, NIGHTS_DIR_FILES.archive, 'locks')), 'the inputs were archived');
    t.is(await readFile(repoLock, 'utf8'), repoLockBefore, 'the repository\'s lock is never written');
    t.is(renderImageLock(await readImageLock(join(night, NIGHT_FILES.lock))).length > 0, true);
    t.is(await qemuProcessesUnder(dir), 0, 'the lab was torn down');
    t.false(existsSync(join(out, NIGHTS_DIR_FILES.work, 'lab')), 'no lab files are left');

    const started = Date.now();
    const second = await runNightly({ config, outDir: out, repoLock, progress });
    t.is(second.outcome, 'no-change', second.message);
    t.is(second.exitCode, 0);
    t.regex(second.message, /^no change: the refreshed lock equals the lock of /);
    t.log(`no-change night in ${((Date.now() - started) / 1000).toFixed(1)} s; first night: ${summary.verdict.passed}/${summary.verdict.total} passed, ${summary.verdict.notApplicable} not applicable`);
    t.regex(await readFile(join(out, LAST_RUN_FILES.markdown), 'utf8'), /no change/);
    t.deepEqual((await readdir(out)).filter((n) => /^\d{4}-/.test(n)).length, 1, 'no new night directory');
  });
});
