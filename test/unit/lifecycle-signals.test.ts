/**
 * Stopping work in progress: the step runner undoes only after the step stopped (bounded),
 * saves the logs before undo, readiness requirements stop on abort, and a command ends within
 * a bounded time of SIGTERM whatever it waits on (real timers, real files, real processes).
 */
import test from 'ava';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CancelledError, LabError } from '../../core/errors.ts';
import { EXIT_GRACE_MS } from '../../core/main.ts';
import { LAB_FILES } from '../../core/paths.ts';
import { Progress } from '../../core/progress.ts';
import { runSteps, type Step } from '../../core/steps.ts';
import { BUNDLE_FILES, saveFailureBundle } from '../../lab/failure-bundle.ts';
import { waitForRequirement, type Requirement } from '../../lab/requirements.ts';
import { withTempDir } from '../helpers.ts';

const quiet = () => new Progress('plain', () => undefined);

test('undo runs only after an aborted step has actually stopped', async (t) => {
  const log: string[] = [];
  const controller = new AbortController();
  const steps: Step<unknown>[] = [
    { title: 'Making a file', timeoutMs: 5000, run: async (_c, s) => s.onUndo('file', async () => void log.push('undo')) },
    {
      title: 'Writing slowly',
      timeoutMs: 5000,
      // Notices the abort, but needs 300ms to finish what it is writing.
      run: (_c, s) => new Promise((resolve) => s.signal.addEventListener('abort', () => setTimeout(() => resolve(void log.push('step stopped')), 300))),
    },
  ];
  setTimeout(() => controller.abort(), 100);
  const error = await t.throwsAsync(runSteps(steps, {}, { progress: quiet(), signal: controller.signal }));
  t.true(error instanceof CancelledError);
  t.deepEqual(log, ['step stopped', 'undo']);
});

test('a step that never stops delays undo by a bounded time only', async (t) => {
  const log: string[] = [];
  const lines: string[] = [];
  const steps: Step<unknown>[] = [
    { title: 'Making a file', timeoutMs: 5000, run: async (_c, s) => s.onUndo('file', async () => void log.push('undo')) },
    { title: 'Hanging', timeoutMs: 100, run: () => new Promise(() => undefined) },
  ];
  const started = Date.now();
  const error = await t.throwsAsync(runSteps(steps, {}, { progress: new Progress('plain', (l) => lines.push(l)), settleMs: 300 }));
  t.regex(error!.message, /Hanging did not finish within 0s/);
  t.deepEqual(log, ['undo']);
  t.true(Date.now() - started < 3000);
  t.regex(lines.join(''), /Hanging did not stop within 0s of being aborted: cleaning up anyway/);
});

test('the logs are saved before undo removes them, in an owner-only directory that survives', async (t) => {
  await withTempDir(async (dir) => {
    const stateDir = join(dir, 'lab');
    const { mkdir, rm } = await import('node:fs/promises');
    let bundle = '';
    const steps: Step<unknown>[] = [
      {
        title: 'Booting the VM',
        timeoutMs: 5000,
        async run(_c, s) {
          await mkdir(stateDir);
          await writeFile(join(stateDir, LAB_FILES.serialLog), 'Booting Debian\nkernel panic\n', { mode: 0o644 });
          await writeFile(join(stateDir, LAB_FILES.qemuLog), 'qemu-system-x86_64: warning: x\n');
          s.onUndo('lab directory', () => rm(stateDir, { recursive: true }));
        },
      },
      { title: 'Waiting for SSH', timeoutMs: 5000, hint: 'read serial.log', run: async () => { throw new LabError('no SSH'); } },
    ];
    await t.throwsAsync(
      runSteps(steps, {}, {
        progress: quiet(),
        beforeUndo: async (failure, timings) => {
          bundle = await saveFailureBundle({ root: join(dir, 'failed'), labName: 'web', stateDir, consoleLog: join(stateDir, LAB_FILES.serialLog), failure, timings, now: new Date('2026-12-01T12:00:00Z') });
        },
      }),
    );
    t.false(existsSync(stateDir), 'undo ran');
    t.is(bundle, join(dir, 'failed', 'web-2026-12-01T12-00-00-000Z'));
    t.is((await stat(bundle)).mode & 0o777, 0o700);
    t.is(await readFile(join(bundle, BUNDLE_FILES.serial), 'utf8'), 'Booting Debian\nkernel panic\n');
    t.is((await stat(join(bundle, BUNDLE_FILES.serial))).mode & 0o777, 0o600);
    t.regex(await readFile(join(bundle, BUNDLE_FILES.qemu), 'utf8'), /warning: x/);
    const steplog = await readFile(join(bundle, BUNDLE_FILES.steps), 'utf8');
    t.regex(steplog, /ok {3}Booting the VM \(\d+\.\ds\)\nFAIL Waiting for SSH/);
    t.regex(steplog, /Waiting for SSH failed: no SSH\nhint: read serial.log/);
    t.regex(steplog, /not saved: journal.txt \(the VM never had an SSH endpoint\)/);
  });
});

const never: Requirement<unknown> = { description: 'SSH answers', timeoutMs: () => 60_000, hint: 'read serial.log', intervalMs: 200, probe: async () => ({ ready: false, detail: 'Connection refused' }) };

test('a requirement stops polling as soon as it is aborted', async (t) => {
  const controller = new AbortController();
  const started = Date.now();
  setTimeout(() => controller.abort(new CancelledError()), 300);
  const error = await t.throwsAsync(waitForRequirement(never, {}, controller.signal));
  t.true(error instanceof CancelledError);
  t.true(Date.now() - started < 2000);
});

test('a requirement not met in time names what was awaited, what it last saw and the hint', async (t) => {
  let probes = 0;
  const error = await t.throwsAsync(waitForRequirement({ ...never, timeoutMs: () => 700, probe: async () => ({ ready: false, detail: `refused ${++probes}` }) }, {}, new AbortController().signal));
  t.regex(error!.message, /^SSH answers: not after 1s \(last: refused \d\)$/);
  t.is((error as LabError).hint, 'read serial.log');
  t.true(probes >= 3, `polled every few hundred ms (${probes} probes)`);
});

test('a requirement that becomes true ends the wait; a probe that throws ends it at once', async (t) => {
  let n = 0;
  await waitForRequirement({ ...never, intervalMs: 10, probe: async () => (++n >= 3 ? { ready: true } : { ready: false, detail: 'not yet' }) }, {}, new AbortController().signal);
  t.is(n, 3);
  await t.throwsAsync(waitForRequirement({ ...never, probe: async () => { throw new LabError('the VM stopped while booting'); } }, {}, new AbortController().signal), { message: /VM stopped/ });
});

test('a command ends within the grace period of SIGTERM even when what it waits on never returns', async (t) => {
  t.timeout(EXIT_GRACE_MS + 90_000);
  await withTempDir(async (dir) => {
    const script = join(dir, 'hang.mts');
    // Waits on a promise no signal settles, as a hung file system call would.
    await writeFile(script, `import { runMain } from ${JSON.stringify(join(process.cwd(), 'core', 'main.ts'))};\nrunMain({ usage: 'hang' }, async () => { console.log('ready'); await new Promise(() => setInterval(() => undefined, 1000)); });\n`);
    // node itself (not the tsx wrapper, which relays signals): the exit code is the command's own.
    const child = execa(process.execPath, ['--import', 'tsx', script], { reject: false });
    await new Promise<void>((resolve) => child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve()));
    const sent = Date.now();
    process.kill(child.pid!, 'SIGTERM'); // not child.kill: execa would SIGKILL it after 5s
    const r = await child;
    const seconds = (Date.now() - sent) / 1000;
    t.is(r.exitCode, 143, r.stderr);
    t.regex(r.stderr, /cleanup did not finish within 20s of SIGTERM: exiting/);
    t.true(seconds < EXIT_GRACE_MS / 1000 + 10, `${seconds}s`);
  });
});
