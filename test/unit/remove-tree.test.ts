import test from 'ava';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../core/exec.ts';
import { mountsUnder, removeTree } from '../../core/remove-tree.ts';
import { notRoot, testUnless } from '../helpers.ts';

test('mounts under a directory, deepest first, octal escapes decoded', (t) => {
  const mounts = [
    'proc /proc proc rw 0 0',
    'proc /cache/layers/tools.tmp-1/root/proc proc ro 0 0',
    'devpts /cache/layers/tools.tmp-1/root/dev/pts devpts rw 0 0',
    'tmpfs /cache/layers/tools.tmp-10/root/dev/shm tmpfs rw 0 0',
    'tmpfs /cache/with\\040space/x tmpfs rw 0 0',
  ].join('\n');
  t.deepEqual(mountsUnder(mounts, '/cache/layers/tools.tmp-1'), ['/cache/layers/tools.tmp-1/root/dev/pts', '/cache/layers/tools.tmp-1/root/proc']);
  t.deepEqual(mountsUnder(mounts, '/cache/with space'), ['/cache/with space/x']);
});

testUnless(notRoot(), 'a build directory with a leftover mount is removed without touching what was mounted', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'labsmith-rmtree-'));
  const outside = await mkdtemp(join(tmpdir(), 'labsmith-rmtree-outside-'));
  await writeFile(join(outside, 'keep'), 'precious');
  const point = join(dir, 'root', 'mnt');
  await mkdir(point, { recursive: true });
  // A bind mount of a directory outside: a naive recursive delete would empty it.
  await run('mount', ['--bind', outside, point]);
  await removeTree(dir);
  t.false(existsSync(dir));
  t.is(await readFile(join(outside, 'keep'), 'utf8'), 'precious');
  t.deepEqual(mountsUnder(await readFile('/proc/self/mounts', 'utf8'), dir), []);
  await run('rm', ['-rf', outside]);
});
