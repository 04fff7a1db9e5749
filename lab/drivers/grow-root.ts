/**
 * Grows the root partition of a lab's overlay before its first boot (images/gpt.ts plans the
 * table): the image's first sectors are read, the grown table is written into the overlay, and
 * the guest only grows the filesystem.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { GPT_HEAD_SECTORS, planGrownGpt, SECTOR_BYTES, type GrownGpt } from '../../images/gpt.ts';
import { readImageBytes, writeOverlayBytes } from './overlay-io.ts';

export async function growRootPartition(opts: { baseImage: string; overlay: string; diskBytes: number; workDir: string; signal?: AbortSignal }): Promise<GrownGpt | undefined> {
  const scratch = await mkdtemp(join(opts.workDir, '.gpt-'));
  try {
    const head = await readImageBytes(opts.baseImage, 0, GPT_HEAD_SECTORS * SECTOR_BYTES, scratch, opts.signal);
    const grown = planGrownGpt(head, opts.diskBytes);
    if (!grown) return undefined;
    await writeOverlayBytes(opts.overlay, grown.writes, scratch, 'the grown partition table', opts.signal);
    return grown;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
