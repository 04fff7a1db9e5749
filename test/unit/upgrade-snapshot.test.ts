/**
 * The rollback point on a real qcow2 overlay: bytes written with qemu-io, snapshot, overwrite,
 * roll back, the bytes as before; refused with a clear error while qemu holds the image.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { run } from '../../core/exec.ts';
import { LabError } from '../../core/errors.ts';
import { sleep } from '../../core/sleep.ts';
import { createSnapshot, listSnapshots, rollBackToSnapshot } from '../../lab/upgrade/snapshot.ts';
import { missingCommand, testUnless, withTempDir } from '../helpers.ts';

const reason = missingCommand('qemu-img', 'qemu-io');

/** Reads 4 KiB at offset 1 MiB and tells whether every byte equals `pattern`. */
async function holdsPattern(image: string, pattern: number): Promise<boolean> {
  const r = await run('qemu-io', ['-f', 'qcow2', '-c', `read -P ${pattern} 1M 4k`, image], { allowFailure: true });
  return r.exitCode === 0 && !/Pattern verification failed/.test(r.stdout + r.stderr);
}

testUnless(reason, 'snapshot, overwrite, roll back: the bytes come back; an image in use is refused with a hint', async (t) => {
  await withTempDir(async (dir) => {
    const base = join(dir, 'base.qcow2');
    const overlay = join(dir, 'lab.qcow2');
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', base, '16M']);
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', overlay]);
    await run('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0xaa 1M 4k', overlay]);
    t.true(await holdsPattern(overlay, 0xaa));

    await createSnapshot(overlay, 'before-upgrade');
    t.deepEqual((await listSnapshots(overlay)).map((s) => s.tag), ['before-upgrade']);
    await run('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x55 1M 4k', overlay]);
    t.true(await holdsPattern(overlay, 0x55), 'the overwrite landed');
    t.false(await holdsPattern(overlay, 0xaa));

    await rollBackToSnapshot(overlay, 'before-upgrade');
    t.true(await holdsPattern(overlay, 0xaa), 'rolled back: the bytes as before the snapshot');
    t.false(await holdsPattern(overlay, 0x55));

    const dup = await t.throwsAsync(createSnapshot(overlay, 'before-upgrade'), { instanceOf: LabError });
    t.regex(dup!.message, /already has a snapshot named before-upgrade/);
    const none = await t.throwsAsync(rollBackToSnapshot(overlay, 'nope'), { instanceOf: LabError });
    t.regex(none!.message, /no snapshot named nope \(it has: before-upgrade\)/);

    // qemu-io in interactive mode keeps the image open with its write lock, as a running VM does.
    const holder = spawn('qemu-io', ['-f', 'qcow2', overlay], { stdio: ['pipe', 'ignore', 'ignore'] });
    try {
      await sleep(1000);
      const locked = await t.throwsAsync(createSnapshot(overlay, 'while-running'), { instanceOf: LabError });
      t.regex(locked!.message, /the disk is in use \(qemu holds its lock\)/);
      t.regex((locked as LabError).hint ?? '', /npm run lab:down/);
      await t.throwsAsync(rollBackToSnapshot(overlay, 'before-upgrade'), { message: /the disk is in use/ });
    } finally {
      holder.stdin.end('quit\n');
      await new Promise((resolve) => holder.once('exit', resolve));
    }
    t.true(await holdsPattern(overlay, 0xaa), 'the refused calls changed nothing');
  });
});
