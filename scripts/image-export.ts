// npm run image:export -- --format raw|qcow2 --out FILE [--size 200GiB] [--config lab.yaml] [--lock FILE] [--os-only]
import { resolve } from 'node:path';
import { LabError } from '../core/errors.ts';
import { runMain } from '../core/main.ts';
import { formatSize } from '../core/units.ts';
import { loadLabConfig } from '../config/load.ts';
import { buildImage } from '../images/build.ts';
import { exportImage, planExport, type ExportFormat } from '../images/export.ts';
import { IMAGE_SOURCE_USAGE, loadImageSource, type ImageSourceFlags } from '../images/source.ts';

runMain(
  {
    string: ['config', 'lock', 'artifacts', 'format', 'out', 'size'],
    boolean: ['os-only'],
    default: { format: 'raw' },
    usage: `
npm run image:export -- --out FILE [options]
  --format raw|qcow2   raw for dd to a disk, qcow2 for libvirt/Proxmox (default raw)
  --out FILE           the exported disk; FILE.sha256 is written beside it
  --size SIZE          grow the disk to SIZE (e.g. 200GiB) and move the GPT backup header to its end
  --config FILE        lab config (default: lab.yaml)
${IMAGE_SOURCE_USAGE}`,
  },
  async ({ args, progress, signal }) => {
    if (!args.out) throw new LabError('--out FILE is required', 'npm run image:export -- --format raw --out server.raw', 2);
    // Bad flags are refused before an image is built.
    planExport({ format: args.format as ExportFormat, size: args.size }, 0);
    const config = await loadLabConfig(args.config);
    const image = await buildImage({ debian: config.debian, source: await loadImageSource(config, args as ImageSourceFlags), progress, signal });
    progress.start(`Exporting the image as ${args.format}`);
    const exported = await exportImage({ disk: image.disk, format: args.format as ExportFormat, out: resolve(args.out), size: args.size, signal });
    progress.end(true);
    process.stdout.write(`${exported.file}: ${formatSize(exported.virtualBytes)} disk, ${formatSize(exported.fileBytes)} on disk\n${exported.sha256File}: sha256 ${exported.sha256}\n`);
  },
);
