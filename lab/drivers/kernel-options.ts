/**
 * A lab's kernel options on the UEFI path: written into the GRUB environment block on its
 * overlay's ESP (images/boot-files.ts), which GRUB reads before the image's own command line.
 * The base image, and so a server booted from it, keeps its empty block.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { LabError } from '../../core/errors.ts';
import { GRUB_ENV_FILE, KERNEL_OPTIONS_VARIABLE, locateGrubEnvBlocks, parseGrubEnvBlock, renderGrubEnvBlock, GRUB_ENV_BYTES } from '../../images/boot-files.ts';
import { findEspExtent, GPT_HEAD_SECTORS, SECTOR_BYTES } from '../../images/gpt.ts';
import { readImageBytes, writeOverlayBytes } from './overlay-io.ts';

/** Where the image's environment block lies on the disk: its ESP holds exactly one. */
export async function locateKernelOptionsBlock(baseImage: string, scratch: string, signal?: AbortSignal): Promise<number> {
  const head = await readImageBytes(baseImage, 0, GPT_HEAD_SECTORS * SECTOR_BYTES, scratch, signal);
  const esp = findEspExtent(head);
  const rebuild = 'rebuild the image with this labsmith: npm run image:build -- --rebuild';
  if (!esp) throw new LabError(`${baseImage} has no EFI system partition`, rebuild);
  const found = locateGrubEnvBlocks(await readImageBytes(baseImage, esp.offset, esp.bytes, scratch, signal), SECTOR_BYTES);
  if (found.length !== 1) throw new LabError(`${baseImage}: expected one GRUB environment block (${GRUB_ENV_FILE}) on the ESP, found ${found.length}`, rebuild);
  return esp.offset + found[0]!;
}

/** Sets the lab's kernel options in `overlay`'s copy of the block; returns the options GRUB will read back. */
export async function writeKernelOptions(opts: { baseImage: string; overlay: string; options: string; workDir: string; signal?: AbortSignal }): Promise<string> {
  const scratch = await mkdtemp(join(opts.workDir, '.grubenv-'));
  try {
    const offset = await locateKernelOptionsBlock(opts.baseImage, scratch, opts.signal);
    const block = Buffer.from(renderGrubEnvBlock({ [KERNEL_OPTIONS_VARIABLE]: opts.options }), 'latin1');
    await writeOverlayBytes(opts.overlay, [{ offset, data: block }], scratch, 'the kernel options', opts.signal);
    const written = parseGrubEnvBlock(await readImageBytes(opts.overlay, offset, GRUB_ENV_BYTES, scratch, opts.signal));
    const readBack = written?.[KERNEL_OPTIONS_VARIABLE];
    if (readBack !== opts.options) throw new LabError(`the kernel options written into ${opts.overlay} read back as ${JSON.stringify(readBack)}`, 'the overlay may be damaged: npm run lab:down && npm run lab:up');
    return readBack;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
