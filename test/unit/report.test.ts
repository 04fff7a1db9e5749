import test from 'ava';
import { Parser } from 'tap-parser';
import { renderTapPoint, runCheck, runChecks, type Check } from '../../lab/acceptance/check.ts';
import { parseTap, renderCountsLine, renderJsonReport, renderJunit, renderSummary } from '../../lab/acceptance/report.ts';
import { CancelledError } from '../../core/errors.ts';
import { sleep } from '../../core/sleep.ts';

const TAP = `TAP version 14
1..5
ok 1 - passes # time=12ms
not ok 2 - fails # time=30ms
  ---
  detail: HTTP 502
  hint: check the ingress
  reproduce: curl -si http://127.0.0.1/
  ...
ok 3 - skipped one # SKIP no https forward configured
not ok 4 - known gap # TODO cluster checks come with the Kubernetes layer
ok 5 - <xml & "quotes">
`;

test('TAP with passes, failures, skips and todos gives the right counts and closing line', async (t) => {
  const r = await parseTap(TAP);
  t.is(r.count, 5);
  t.is(r.fail, 1);
  t.is(r.skip, 1);
  t.is(r.todo, 1);
  t.false(r.ok);
  t.is(renderCountsLine(r), '2 passed, 1 failed, 2 skipped');
  const summary = renderSummary(r, 'acceptance');
  t.regex(summary, /✗ fails \(0\.0s\)\n {6}saw: {2}HTTP 502\n {6}hint: check the ingress\n {6}try: {2}curl/);
  t.regex(summary, /- skipped one \[skipped: no https forward configured\]/);
  t.regex(summary, /2 passed, 1 failed, 2 skipped\n$/);
});

test('a bailout counts as a failure', async (t) => {
  const r = await parseTap('TAP version 14\n1..3\nok 1 - a\nBail out! lab unreachable\n');
  t.truthy(r.bailout);
  t.false(r.ok);
  t.regex(renderCountsLine(r), /1 failed/);
  t.regex(renderJunit(r, 's'), /<error message="lab unreachable"\/>/);
});

test('JUnit XML parses back with the same counts and escaped names', async (t) => {
  const xml = renderJunit(await parseTap(TAP), 'labsmith acceptance');
  t.regex(xml, /<testsuite name="labsmith acceptance" tests="5" failures="1" errors="0" skipped="2"/);
  t.regex(xml, /<testcase name="&lt;xml &amp; &quot;quotes&quot;&gt;"/);
  t.regex(xml, /<failure message="HTTP 502">/);
  t.regex(xml, /time="0.030"/);
  // Parse back: every testcase opens and closes, attributes well formed.
  const cases = [...xml.matchAll(/<testcase ([^>]*?)(\/>|>[\s\S]*?<\/testcase>)/g)];
  t.is(cases.length, 5);
  for (const c of cases) t.regex(c[1]!, /^name="[^"<&]*(&\w+;[^"<&]*)*" classname="[^"]*" time="\d+\.\d{3}"$/);
});

test('JSON report keeps per-check diagnostics', async (t) => {
  const json = JSON.parse(renderJsonReport(await parseTap(TAP)));
  t.deepEqual(json.counts, { total: 5, pass: 2, fail: 1, skip: 1, todo: 1 });
  t.is(json.checks[1].detail, 'HTTP 502');
  t.is(json.checks[1].durationMs, 30);
});

const check = (probe: Check<null>['probe'], over: Partial<Check<null>> = {}): Check<null> => ({
  id: 'c', description: 'a check', timeoutMs: 2000, retry: { attempts: 3, intervalMs: 10 }, hint: 'h', reproduce: () => 'cmd', probe, ...over,
});

test('a check retries until it passes and records attempts', async (t) => {
  let n = 0;
  const r = await runCheck(check(async () => ({ ok: ++n === 2, detail: `try ${n}` })), null);
  t.true(r.ok);
  t.is(r.attempts, 2);
  t.is(r.detail, 'try 2');
});

test('a check that never passes reports the last thing it saw', async (t) => {
  const r = await runCheck(check(async () => { throw new Error('connection refused'); }), null);
  t.false(r.ok);
  t.is(r.attempts, 3);
  t.is(r.detail, 'connection refused');
});

test('a hanging probe is cut off at the timeout', async (t) => {
  const r = await runCheck(check(() => new Promise(() => undefined), { timeoutMs: 100, retry: { attempts: 1, intervalMs: 0 } }), null);
  t.false(r.ok);
  t.regex(r.detail, /timed out after 100ms/);
});

test('runChecks writes TAP that tap-parser reads back', async (t) => {
  const lines: string[] = [];
  await runChecks([check(async () => ({ ok: true, detail: 'fine' })), check(async () => ({ ok: false, detail: 'bad # not a directive' }), { id: 'd' }), check(async () => ({ ok: true, detail: '' }), { skip: () => 'not configured' })], null, (l) => lines.push(l));
  const r = await parseTap(lines.join('\n') + '\n');
  t.deepEqual([r.count, r.pass, r.fail, r.skip], [3, 1, 1, 1]);
  t.is(r.tests[1]!.diag?.detail, 'bad # not a directive');
  t.is(r.tests[1]!.diag?.hint, 'h');
  t.regex(renderTapPoint(1, { id: 'x', description: 'has # hash', ok: true, detail: '', attempts: 1, durationMs: 5, hint: '', reproduce: '' }), /^ok 1 - x: has \\# hash # time=5ms/);
  t.truthy(Parser);
});

test('Ctrl-C during the wait between attempts stops the check at once', async (t) => {
  const controller = new AbortController();
  const slow = check(async () => ({ ok: false, detail: 'not yet' }), { timeoutMs: 60_000, retry: { attempts: 5, intervalMs: 10_000 } });
  setTimeout(() => controller.abort(), 100);
  const started = Date.now();
  await t.throwsAsync(runCheck(slow, null, Date.now, controller.signal), { instanceOf: CancelledError });
  t.true(Date.now() - started < 1000, `stopped after ${Date.now() - started}ms`);
});

test('an aborted check returns only once its probe has stopped, so cleanup after it cannot race it', async (t) => {
  const controller = new AbortController();
  let probeStoppedAt = 0;
  const busy = check(async (_ctx, signal) => {
    await sleep(30_000, signal).catch(() => undefined);
    // Some work of its own to wind down after the abort (closing what it opened).
    await sleep(200);
    probeStoppedAt = Date.now();
    return { ok: false, detail: 'stopped' };
  }, { timeoutMs: 60_000 });
  setTimeout(() => controller.abort(), 100);
  await t.throwsAsync(runChecks([busy], null, () => undefined, controller.signal), { instanceOf: CancelledError });
  t.true(probeStoppedAt > 0 && Date.now() >= probeStoppedAt, 'the probe had finished before runChecks returned');
});
