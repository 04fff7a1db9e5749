/**
 * Reads of a lab's base image and writes into its overlay before the first boot, without mounting
 * anything: `qemu-img dd` reads a byte range of the image, `qemu-io` writes byte ranges into the
 * qcow2 overlay (the base image stays untouched).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { LabError } from '../../core/errors.ts';
import { run } from '../../core/exec.ts';
import type { DiskWrite } from '../../images/gpt.ts';

/** The largest block size (≤ 1 MiB) both numbers are multiples of: qemu-img dd copies a block per request. */
function blockSizeFor(offset: number, length: number): number {
  let bs = 2 ** 20;
  while (bs > 1 && (offset % bs !== 0 || length % bs !== 0)) bs /= 2;
  return bs;
}

/** `length` bytes of `image` from `offset`, through a file in `scratch`. */
export async function readImageBytes(image: string, offset: number, length: number, scratch: string, signal?: AbortSignal): Promise<Buffer> {
  const bs = blockSizeFor(offset, length);
  const out = join(scratch, `read-${offset}-${length}.raw`);
  // qemu-img dd (7.2) ends its copy at count blocks from the image's start, not from skip: asking
  // for the end block reads the range there, and at most more where count is taken from skip.
  await run('qemu-img', ['dd', '-f', 'qcow2', '-O', 'raw', `bs=${bs}`, `skip=${offset / bs}`, `count=${(offset + length) / bs}`, `if=${image}`, `of=${out}`], {
    signal,
    hint: 'the base image may be missing or corrupt: rebuild it with `npm run image:build -- --rebuild`',
  });
  const bytes = await readFile(out);
  if (bytes.length < length) throw new LabError(`${image} is shorter than expected: ${length} bytes at ${offset} gave ${bytes.length}`, 'rebuild the image: npm run image:build -- --rebuild');
  return bytes.subarray(0, length);
}

/** Writes each range into the qcow2 `overlay` in one qemu-io run; `what` names the change in its error. */
export async function writeOverlayBytes(overlay: string, writes: DiskWrite[], scratch: string, what: string, signal?: AbortSignal): Promise<void> {
  const commands: string[] = [];
  for (const [i, w] of writes.entries()) {
    // qemu-io splits its command at spaces: the file is named relative to its working directory.
    await writeFile(join(scratch, `write-${i}.bin`), w.data);
    commands.push('-c', `write -q -s write-${i}.bin ${w.offset} ${w.data.length}`);
  }
  await run('qemu-io', ['-f', 'qcow2', ...commands, resolve(overlay)], { cwd: scratch, signal, hint: `qemu-io could not write ${what} into ${overlay}` });
}
