/**
 * The skip policy: under CI=true a missing prerequisite fails its test, a world fact still
 * skips. Shown on the decision function and on a real child ava run of a fixture test file.
 */
import test from 'ava';
import { run } from '../../core/exec.ts';
import { parseTap } from '../../lab/acceptance/report.ts';
import { isCi, skipDecision, worldFact } from '../helpers.ts';

test('a missing prerequisite skips locally and fails under CI; a world fact skips in both', (t) => {
  const tool = 'frobnicate is not installed';
  t.deepEqual(skipDecision(undefined, { CI: 'true' }), { action: 'run' });
  t.deepEqual(skipDecision(tool, {}), { action: 'skip', reason: tool });
  t.deepEqual(skipDecision(tool, { CI: 'true' }), { action: 'fail', reason: tool });
  t.deepEqual(skipDecision(worldFact('registry.terraform.io is unreachable'), { CI: 'true' }), { action: 'skip', reason: 'registry.terraform.io is unreachable' });
  t.deepEqual(skipDecision(worldFact('x'), {}), { action: 'skip', reason: 'x' });
  t.true(isCi({ CI: '1' }));
  t.false(isCi({ CI: 'false' }));
  t.false(isCi({ CI: '' }));
});

async function childRun(ci: string) {
  const r = await run('node_modules/.bin/ava', ['--config', 'test/fixtures/skip-policy/ava.config.mjs', '--tap'], { allowFailure: true, env: { CI: ci }, timeoutMs: 120_000 });
  return { exitCode: r.exitCode, report: await parseTap(r.stdout) };
}

test('a child ava run of the fixture: red under CI=true because a prerequisite is missing, green without CI', async (t) => {
  const [ci, local] = await Promise.all([childRun('true'), childRun('false')]);
  const byName = (r: typeof ci.report) => Object.fromEntries(r.tests.map((x) => [x.name.replace(/ \(.*$/, ''), x.skip ? 'skip' : x.ok ? 'pass' : 'fail']));
  t.deepEqual(byName(ci.report), { runs: 'pass', 'needs a host tool': 'fail', 'needs the world': 'skip' });
  t.not(ci.exitCode, 0, 'the CI run is red');
  t.deepEqual(byName(local.report), { runs: 'pass', 'needs a host tool': 'skip', 'needs the world': 'skip' });
  t.is(local.exitCode, 0);
});
