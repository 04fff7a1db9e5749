import test from 'ava';
import { CancelledError, LabError } from '../../core/errors.ts';
import { chooseProgressMode, Progress } from '../../core/progress.ts';
import { runSteps, StepFailedError, type Step } from '../../core/steps.ts';

function recorder() {
  const out: string[] = [];
  return { out, progress: new Progress('plain', (t) => out.push(t)) };
}

const made = (log: string[], name: string): Step<unknown> => ({
  title: `Making ${name}`,
  timeoutMs: 1000,
  async run(_c, s) {
    log.push(`make ${name}`);
    s.onUndo(name, async () => void log.push(`undo ${name}`));
  },
});

test('steps run in order and report ✓ with durations', async (t) => {
  const log: string[] = [];
  const { out, progress } = recorder();
  const timings = await runSteps([made(log, 'a'), made(log, 'b')], {}, { progress });
  t.deepEqual(log, ['make a', 'make b']);
  t.deepEqual(timings.map((x) => x.ok), [true, true]);
  t.regex(out.join(''), /✓ Making a \(\d+ms\)\n[\s\S]*✓ Making b/);
});

test('a failing step undoes earlier steps in reverse and carries its hint', async (t) => {
  const log: string[] = [];
  const { out, progress } = recorder();
  const failing: Step<unknown> = { title: 'Breaking', timeoutMs: 1000, hint: 'do X', run: async () => { throw new Error('boom'); } };
  const error = await t.throwsAsync(runSteps([made(log, 'a'), made(log, 'b'), failing], {}, { progress }));
  t.true(error instanceof StepFailedError);
  t.is(error!.message, 'Breaking failed: boom');
  t.is((error as LabError).hint, 'do X');
  t.deepEqual(log, ['make a', 'make b', 'undo b', 'undo a']);
  t.regex(out.join(''), /✗ Breaking/);
});

test('--retain keeps what was made', async (t) => {
  const log: string[] = [];
  const { out, progress } = recorder();
  const failing: Step<unknown> = { title: 'Breaking', timeoutMs: 1000, run: async () => { throw new Error('boom'); } };
  await t.throwsAsync(runSteps([made(log, 'a'), failing], {}, { progress, retain: true }));
  t.deepEqual(log, ['make a']);
  t.regex(out.join(''), /--retain: left in place: a/);
});

test('a step past its timeout fails with a timeout error and is aborted', async (t) => {
  const { progress } = recorder();
  let aborted = false;
  const slow: Step<unknown> = {
    title: 'Sleeping',
    timeoutMs: 50,
    run: (_c, s) => new Promise((resolve) => s.signal.addEventListener('abort', () => { aborted = true; resolve(); })),
  };
  const error = await t.throwsAsync(runSteps([slow], {}, { progress }));
  t.regex(error!.message, /Sleeping did not finish within 0s/);
  t.true(aborted);
});

test('cancelling undoes and reports cancelled', async (t) => {
  const log: string[] = [];
  const { progress } = recorder();
  const controller = new AbortController();
  const waits: Step<unknown> = { title: 'Waiting', timeoutMs: 5000, run: () => new Promise(() => controller.abort()) };
  const error = await t.throwsAsync(runSteps([made(log, 'a'), waits], {}, { progress, signal: controller.signal }));
  t.true(error instanceof CancelledError);
  t.deepEqual(log, ['make a', 'undo a']);
});

test('an undo that fails is reported and the others still run', async (t) => {
  const log: string[] = [];
  const { out, progress } = recorder();
  const badUndo: Step<unknown> = { title: 'Making bad', timeoutMs: 1000, run: async (_c, s) => s.onUndo('bad', async () => { throw new Error('cannot'); }) };
  const failing: Step<unknown> = { title: 'Breaking', timeoutMs: 1000, run: async () => { throw new Error('boom'); } };
  await t.throwsAsync(runSteps([made(log, 'a'), badUndo, failing], {}, { progress }));
  t.deepEqual(log, ['make a', 'undo a']);
  t.regex(out.join(''), /✗ Cleaning up: bad .* — cannot/);
});

test('json progress prints one event per line', async (t) => {
  const out: string[] = [];
  const progress = new Progress('json', (x) => out.push(x));
  await runSteps([made([], 'a')], {}, { progress });
  const events = out.join('').trim().split('\n').map((l) => JSON.parse(l));
  t.deepEqual(events.map((e) => e.event), ['step-start', 'step-end']);
  t.is(events[1].ok, true);
  t.is(typeof events[1].durationMs, 'number');
});

test('nested steps keep their own timings and are indented under their parent', async (t) => {
  const { out, progress } = recorder();
  const inner: Step<unknown> = { title: 'Building OS layer', timeoutMs: 1000, run: async () => new Promise((r) => setTimeout(r, 30)) };
  const outer: Step<unknown> = { title: 'Building or reusing the image', timeoutMs: 1000, run: async () => void (await runSteps([inner], {}, { progress })) };
  const timings = await runSteps([outer], {}, { progress });
  t.true(timings[0]!.durationMs >= 30, `outer took ${timings[0]!.durationMs}ms`);
  t.regex(out.join(''), /^• Building or reusing the image \.\.\.\n {2}• Building OS layer \.\.\.\n {2}✓ Building OS layer \(\d+ms\)\n✓ Building or reusing the image \(\d+ms\)\n$/);
});

test('a TTY gets a spinner; a pipe or CI gets plain lines', (t) => {
  t.is(chooseProgressMode({ isTTY: true }), 'tty');
  t.is(chooseProgressMode({ isTTY: true, ci: true }), 'plain');
  t.is(chooseProgressMode({ isTTY: false }), 'plain');
  t.is(chooseProgressMode({ isTTY: true, json: true }), 'json');
  const out: string[] = [];
  const progress = new Progress('tty', (x) => out.push(x));
  progress.start('Booting');
  progress.end(true);
  t.regex(out.join(''), /^⠋ Booting\r\x1b\[K✓ Booting \(\d+ms\)\n$/);
});
