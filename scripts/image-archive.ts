#!/usr/bin/env -S npx tsx
// npm run image:archive -- --out DIR [--os-only] [--lock FILE] [--artifacts DIR] | --out DIR --prune --keep N
import { resolve } from 'node:path';
import { LabError } from '../core/errors.ts';
import { runMain } from '../core/main.ts';
import { loadLabConfig } from '../config/load.ts';
import { archiveImage, pruneArchive, renderArchiveSummary, renderPruneSummary } from '../images/archive/archive-image.ts';
import { IMAGE_SOURCE_USAGE, loadImageSource, type ImageSourceFlags } from '../images/source.ts';

runMain(
  {
    string: ['out', 'config', 'lock', 'artifacts', 'keep'],
    boolean: ['os-only', 'prune'],
    usage: `
npm run image:archive -- --out DIR [options]
  builds the image (or reuses it from the cache), then writes every input of that build into the
  content-addressed archive DIR: a partial apt mirror per Debian suite, the Kubernetes inputs, the
  lock and its index (image:fetch-artifacts is this command). Many builds share one DIR.
  --out DIR                the archive (created when missing); later: image:build -- --artifacts DIR
  --config FILE            lab config (default: lab.yaml)
${IMAGE_SOURCE_USAGE}
  --prune --keep N         keep the inputs of the newest N locks in DIR, remove what nothing references
  --json                   one JSON event per line
  --verbose                stack traces on errors`,
  },
  async ({ args, progress, signal }) => {
    if (!args.out) throw new LabError('--out DIR is required', 'name the archive directory, e.g. --out /media/usb/labsmith-archive', 2);
    const out = resolve(String(args.out));
    if (args.prune) {
      if (args.keep === undefined) throw new LabError('--prune needs --keep N', 'e.g. --prune --keep 7 keeps the newest seven locks', 2);
      process.stdout.write(renderPruneSummary(await pruneArchive(out, Number(args.keep))));
      return;
    }
    const config = await loadLabConfig(args.config);
    const source = await loadImageSource(config, args as ImageSourceFlags);
    const { image, result } = await archiveImage({ debian: config.debian, source, progress, signal, out });
    process.stdout.write(renderArchiveSummary(result, image));
  },
);
