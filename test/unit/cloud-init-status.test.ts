/**
 * lab:up's cloud-init readiness reads the files `cloud-init status` reads: done once result.json
 * exists, errors from every stage of status.json, a failed unit or a disabled cloud-init stop the
 * wait. The script runs for real in a mount namespace with its own /run.
 */
import test from 'ava';
import { run } from '../../core/exec.ts';
import { parseCloudInitStatus, renderCloudInitWaitScript } from '../../lab/cloud-init-status.ts';
import { missingCommand, notRoot, testUnless } from '../helpers.ts';

/** status.json as cloud-init 25 writes it (single-process mode), finished with one warning. */
const STATUS_JSON = JSON.stringify({
  v1: {
    datasource: 'nocloud',
    'init-local': { errors: [], recoverable_errors: {}, start: 1.5, finished: 3.2 },
    init: { errors: [], recoverable_errors: {}, start: 4.0, finished: 9.1 },
    'modules-config': { errors: [], recoverable_errors: {}, start: 10.0, finished: 11.0 },
    'modules-final': { errors: [], recoverable_errors: { WARNING: ['Running module growpart failed'] }, start: 11.5, finished: 18.0 },
    stage: null,
  },
});

test('done with a warning: ready, the warning kept for the checks', (t) => {
  t.deepEqual(parseCloudInitStatus(`@state=done\n${STATUS_JSON}\n`), { state: 'done', errors: [], recoverableErrors: ['WARNING: Running module growpart failed'] });
});

test('errors of every stage are collected; a failed unit and a disabled cloud-init are errors; an unreadable answer is unknown', (t) => {
  const failed = JSON.stringify({ v1: { init: { errors: ['bad user-data'], recoverable_errors: {} }, 'modules-final': { errors: ['runcmd failed'], recoverable_errors: {} }, stage: null } });
  t.deepEqual(parseCloudInitStatus(`@state=done\n${failed}`).errors, ['bad user-data', 'runcmd failed']);
  t.regex(parseCloudInitStatus('@state=unit-failed\n').errors.join(), /a cloud-init unit failed/);
  t.regex(parseCloudInitStatus('@state=disabled\n').errors.join(), /disabled/);
  t.is(parseCloudInitStatus('@state=running\n{"v1": {"stage": "init"}}').state, 'running');
  t.is(parseCloudInitStatus('').state, 'unknown');
  t.deepEqual(parseCloudInitStatus('@state=done\nnot json').errors, ['status.json is not JSON']);
});

testUnless(missingCommand('shellcheck'), 'the wait script is shellcheck clean', async (t) => {
  const r = await run('shellcheck', ['-s', 'sh', '-'], { input: renderCloudInitWaitScript(30), allowFailure: true });
  t.is(r.exitCode, 0, r.stdout);
});

/** Runs the wait script with `files` in a private /run/cloud-init (a tmpfs over /run in a mount namespace). */
async function waitWith(files: Record<string, string>, seconds: number): Promise<{ output: string; ms: number }> {
  const setup = ['mount -t tmpfs none /run', 'mkdir /run/cloud-init', ...Object.entries(files).map(([name, content]) => `printf %s '${content}' > /run/cloud-init/${name}`)].join(' && ');
  const started = Date.now();
  const r = await run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', `${setup} && sh -c "$1"`, 'sh', renderCloudInitWaitScript(seconds)]);
  return { output: r.stdout, ms: Date.now() - started };
}

testUnless(notRoot() ?? missingCommand('unshare'), 'the wait script answers at once when cloud-init is done, and says "running" when its time is up', async (t) => {
  const done = await waitWith({ 'status.json': STATUS_JSON, 'result.json': '{"v1": {"errors": []}}' }, 30);
  t.deepEqual(parseCloudInitStatus(done.output), { state: 'done', errors: [], recoverableErrors: ['WARNING: Running module growpart failed'] });
  t.true(done.ms < 10_000, `answered after ${done.ms} ms`);
  const running = await waitWith({ 'status.json': '{"v1": {"stage": "modules-final"}}' }, 1);
  t.is(parseCloudInitStatus(running.output).state, 'running');
  t.is(parseCloudInitStatus((await waitWith({ disabled: '' }, 30)).output).state, 'disabled');
});
