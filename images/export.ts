/**
 * `image:export`: the built disk as a file for `dd` to a physical disk or for import into
 * libvirt/Proxmox, with its sha256 beside it (sha256sum format). With `--size` the raw disk is
 * grown first and its GPT backup header moved to the new end (`sgdisk -e`); without it, the
 * first boot's growpart does the same on whatever disk it was written to.
 */
import { rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { LabError } from '../core/errors.ts';
import { run } from '../core/exec.ts';
import { sha256File } from '../core/hash.ts';
import { parseSize } from '../core/units.ts';

export type ExportFormat = 'raw' | 'qcow2';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['raw', 'qcow2'];

export interface ExportRequest {
  /** The built disk (BuiltImage.disk, a qcow2). */
  disk: string;
  format: ExportFormat;
  out: string;
  /** "200GiB": the exported disk's size; at least the image's. */
  size?: string;
  signal?: AbortSignal;
}

export interface ExportedImage {
  file: string;
  sha256: string;
  sha256File: string;
  /** Bytes the file takes (sparse raw files take less). */
  fileBytes: number;
  virtualBytes: number;
}

/** Checks the request before anything is written (pure). */
export function planExport(req: Pick<ExportRequest, 'format' | 'size'>, imageVirtualBytes: number): { sizeBytes?: number } {
  if (!EXPORT_FORMATS.includes(req.format)) throw new LabError(`--format ${String(req.format)} is not one of ${EXPORT_FORMATS.join(', ')}`, 'use --format raw (for dd) or --format qcow2 (for libvirt/Proxmox)', 2);
  if (req.size === undefined) return {};
  const sizeBytes = parseSize(req.size);
  if (sizeBytes === undefined) throw new LabError(`--size ${req.size} is not a size`, 'write it like 200GiB or 500G', 2);
  if (sizeBytes < imageVirtualBytes) throw new LabError(`--size ${req.size} is smaller than the image (${imageVirtualBytes} bytes)`, 'give at least the image size, or leave --size out', 2);
  return { sizeBytes };
}

export function renderSha256Line(sha256: string, file: string): string {
  return `${sha256}  ${basename(file)}\n`;
}

export async function virtualSize(file: string, format?: string): Promise<number> {
  const r = await run('qemu-img', ['info', '--output=json', ...(format ? ['-f', format] : []), file]);
  return Number((JSON.parse(r.stdout) as { 'virtual-size': number })['virtual-size']);
}

export async function exportImage(req: ExportRequest): Promise<ExportedImage> {
  const { sizeBytes } = planExport(req, await virtualSize(req.disk, 'qcow2'));
  const raw = `${req.out}.partial-${process.pid}.raw`;
  const partialOut = `${req.out}.partial-${process.pid}`;
  try {
    await run('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', req.disk, raw], { signal: req.signal, hint: 'the image may be missing: npm run image:build' });
    if (sizeBytes !== undefined) {
      await run('qemu-img', ['resize', '-q', '-f', 'raw', raw, String(sizeBytes)], { signal: req.signal });
      // The backup GPT header belongs in the last sector: without this firmware and growpart see a damaged table.
      await run('sgdisk', ['-e', raw], { signal: req.signal, hint: 'sgdisk comes with gdisk: apt-get install gdisk' });
    }
    if (req.format === 'raw') await rename(raw, partialOut);
    else await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, partialOut], { signal: req.signal });
    const sha256 = await sha256File(partialOut);
    await rename(partialOut, req.out);
    const sha256Path = `${req.out}.sha256`;
    await writeFile(sha256Path, renderSha256Line(sha256, req.out));
    return { file: req.out, sha256, sha256File: sha256Path, fileBytes: (await stat(req.out)).blocks * 512, virtualBytes: await virtualSize(req.out, req.format) };
  } finally {
    await rm(raw, { force: true });
    await rm(partialOut, { force: true });
  }
}
