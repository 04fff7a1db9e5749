/**
 * Grows the root partition of a lab's overlay before its first boot (images/gpt.ts plans the
 * table): the image's first sectors are read with `qemu-img dd`, the grown table is written into
 * the overlay with `qemu-io`, and the guest only grows the filesystem.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { run } from '../../core/exec.ts';
import { GPT_HEAD_SECTORS, planGrownGpt, SECTOR_BYTES, type GrownGpt } from '../../images/gpt.ts';

export async function growRootPartition(opts: { baseImage: string; overlay: string; diskBytes: number; workDir: string; signal?: AbortSignal }): Promise<GrownGpt | undefined> {
  const scratch = await mkdtemp(join(opts.workDir, '.gpt-'));
  try {
    const head = join(scratch, 'head.raw');
    await run('qemu-img', ['dd', '-f', 'qcow2', '-O', 'raw', `bs=${SECTOR_BYTES}`, `count=${GPT_HEAD_SECTORS}`, `if=${opts.baseImage}`, `of=${head}`], {
      signal: opts.signal,
      hint: 'the base image may be missing or corrupt: rebuild it with `npm run image:build -- --rebuild`',
    });
    const grown = planGrownGpt(await readFile(head), opts.diskBytes);
    if (!grown) return undefined;
    const commands: string[] = [];
    for (const [i, w] of grown.writes.entries()) {
      // qemu-io splits its command at spaces: the file is named relative to its working directory.
      await writeFile(join(scratch, `write-${i}.bin`), w.data);
      commands.push('-c', `write -q -s write-${i}.bin ${w.offset} ${w.data.length}`);
    }
    await run('qemu-io', ['-f', 'qcow2', ...commands, resolve(opts.overlay)], { cwd: scratch, signal: opts.signal, hint: `qemu-io could not write the grown partition table into ${opts.overlay}` });
    return grown;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
