import { open, readFile, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../core/exec.ts';
import { GPT_HEAD_SECTORS, planGrownGpt, SECTOR_BYTES } from '../../images/gpt.ts';
import { growRootPartition } from '../../lab/drivers/grow-root.ts';
import { IMAGE_LIKE_DISK_IDS as IDS, imageLikeDisk, missingCommand, testUnless, withTempDir } from '../helpers.ts';

const MiB = 2 ** 20;

async function head(file: string): Promise<Buffer> {
  const fd = await open(file, 'r');
  try {
    const buf = Buffer.alloc(GPT_HEAD_SECTORS * SECTOR_BYTES);
    await fd.read(buf, 0, buf.length, 0);
    return buf;
  } finally {
    await fd.close();
  }
}

async function applyWrites(file: string, writes: { offset: number; data: Buffer }[]): Promise<void> {
  const fd = await open(file, 'r+');
  try {
    for (const w of writes) await fd.write(w.data, 0, w.data.length, w.offset);
  } finally {
    await fd.close();
  }
}

/** sgdisk's own reading of a table: its verdict and partition 2's first and last sector and GUID. */
async function sgdiskView(file: string) {
  const verify = await run('sgdisk', ['--verify', file], { allowFailure: true });
  const info = (await run('sgdisk', ['--info=2', file])).stdout;
  return {
    problems: !/No problems found/.test(verify.stdout),
    verify: verify.stdout,
    first: Number(/First sector: (\d+)/.exec(info)?.[1]),
    last: Number(/Last sector: (\d+)/.exec(info)?.[1]),
    guid: /Partition unique GUID: (\S+)/.exec(info)?.[1]?.toLowerCase(),
  };
}

testUnless(missingCommand('sgdisk'), "the grown table is one sgdisk accepts: root reaches the last usable sector, the backup is at the disk's end", async (t) => {
  await withTempDir(async (dir) => {
    const file = join(dir, 'disk.raw');
    await imageLikeDisk(file);
    const before = await sgdiskView(file);
    const grown = planGrownGpt(await head(file), 300 * MiB)!;
    t.truthy(grown);
    await truncate(file, 300 * MiB);
    await applyWrites(file, grown.writes);
    const after = await sgdiskView(file);
    t.false(after.problems, after.verify);
    t.is(grown.partition, 2);
    t.is(after.first, before.first, 'the partition keeps its start');
    t.is(after.last, (300 * MiB) / SECTOR_BYTES - 34);
    t.is(grown.lastLba, after.last);
    t.is(after.guid, IDS.rootPartGuid, 'root=PARTUUID still finds it');
    // The protective MBR covers the grown disk.
    const mbr = (await head(file)).subarray(0, SECTOR_BYTES);
    t.is(mbr.readUInt32LE(446 + 12), (300 * MiB) / SECTOR_BYTES - 1);
  });
});

testUnless(missingCommand('sgdisk'), 'nothing to grow on a disk no larger or without a table; a damaged table is refused, not rewritten', async (t) => {
  await withTempDir(async (dir) => {
    const file = join(dir, 'disk.raw');
    await imageLikeDisk(file);
    const h = await head(file);
    t.is(planGrownGpt(h, 100 * MiB), undefined);
    const damaged = Buffer.from(h);
    damaged.writeUInt8(damaged.readUInt8(2 * SECTOR_BYTES + 40) ^ 0xff, 2 * SECTOR_BYTES + 40);
    t.throws(() => planGrownGpt(damaged, 300 * MiB), { message: /entries' checksum/ });
    t.is(planGrownGpt(Buffer.alloc(GPT_HEAD_SECTORS * SECTOR_BYTES), 300 * MiB), undefined, 'a blank disk has nothing to grow');
  });
});

testUnless(missingCommand('sgdisk', 'qemu-img', 'qemu-io'), "a lab overlay gets the grown table over its qcow2 base; the base is untouched", async (t) => {
  await withTempDir(async (dir) => {
    const raw = join(dir, 'disk.raw');
    await imageLikeDisk(raw);
    const base = join(dir, 'base.qcow2');
    await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, base]);
    const baseBefore = await readFile(base);
    // A directory with a space: qemu-io's command line is split at spaces.
    const labDir = join(dir, 'lab dir');
    await run('mkdir', [labDir]);
    const overlay = join(labDir, 'overlay.qcow2');
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', base, overlay, String(300 * MiB)]);
    const grown = await growRootPartition({ baseImage: base, overlay, diskBytes: 300 * MiB, workDir: labDir });
    t.is(grown?.partition, 2);
    const out = join(dir, 'overlay.raw');
    await run('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', overlay, out]);
    const view = await sgdiskView(out);
    t.false(view.problems, view.verify);
    t.is(view.last, (300 * MiB) / SECTOR_BYTES - 34);
    t.deepEqual(await readFile(base), baseBefore);
    t.deepEqual((await run('ls', ['-A', labDir])).stdout.trim(), 'overlay.qcow2', 'no scratch files left');
  });
});
