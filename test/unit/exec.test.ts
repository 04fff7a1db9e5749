import test from 'ava';
import { CommandError } from '../../core/errors.ts';
import { formatCommand, run, shellQuote } from '../../core/exec.ts';

test('run captures output', async (t) => {
  const r = await run('sh', ['-c', 'echo out; echo err >&2']);
  t.is(r.stdout, 'out');
  t.is(r.stderr, 'err');
  t.is(r.exitCode, 0);
});

test('a failing command becomes a CommandError with the command, exit code and stderr tail', async (t) => {
  const error = await t.throwsAsync(run('sh', ['-c', 'for i in $(seq 1 30); do echo line$i >&2; done; exit 7', 'it has spaces']));
  t.true(error instanceof CommandError);
  const e = error as CommandError;
  t.is(e.commandExitCode, 7);
  t.is(e.command, "sh -c 'for i in $(seq 1 30); do echo line$i >&2; done; exit 7' 'it has spaces'");
  t.true(e.outputTail.includes('line30'));
  t.false(e.outputTail.includes('line10\n'));
});

test('a missing command hints at doctor', async (t) => {
  const error = await t.throwsAsync(run('labsmith-no-such-command', []));
  t.regex((error as CommandError).hint ?? '', /npm run doctor/);
});

test('timeouts are reported', async (t) => {
  const error = await t.throwsAsync(run('sleep', ['5'], { timeoutMs: 100 }));
  t.regex(error!.message, /timed out after 100 ms/);
});

test('allowFailure returns the exit code', async (t) => {
  const r = await run('sh', ['-c', 'exit 3'], { allowFailure: true });
  t.is(r.exitCode, 3);
});

test('shell quoting for display round-trips through sh', async (t) => {
  const words = ['plain', 'with space', "it's", '$HOME', ''];
  t.is(shellQuote('a/b-c.d'), 'a/b-c.d');
  const r = await run('sh', ['-c', `printf '%s\\n' ${words.map(shellQuote).join(' ')}`]);
  t.deepEqual(r.stdout.split('\n'), words);
  t.is(formatCommand('echo', ['a b']), "echo 'a b'");
});
