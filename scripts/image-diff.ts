#!/usr/bin/env -S npx tsx
// npm run image:diff -- OLD NEW [--archive DIR] [--json] [--out-markdown FILE] [--out-json FILE]
import { LabError } from '../core/errors.ts';
import { runMain } from '../core/main.ts';
import { diffNights } from '../nightly/diff/load.ts';
import { renderImageDiffJson, renderImageDiffMarkdown } from '../nightly/diff/render.ts';

runMain(
  {
    string: ['archive', 'format'],
    usage: `
npm run image:diff -- OLD NEW [options]
  OLD, NEW         night directories (nightly --out DIR/YYYY-MM-DD) or image manifest.json files
  --archive DIR    the input archive holding the new .debs (default: DIR/archive beside NEW)
  --format F       markdown (default) or json
  --verbose        stack traces on errors`,
  },
  async ({ args, signal }) => {
    const [oldPath, newPath, ...rest] = args._.map(String);
    if (!oldPath || !newPath || rest.length) throw new LabError('image:diff takes two arguments: OLD NEW', 'npm run image:diff -- DIR/2026-11-30 DIR/2026-12-01', 2);
    const format = args.format ?? 'markdown';
    if (format !== 'markdown' && format !== 'json') throw new LabError(`--format: unknown format ${format}`, 'choose markdown or json', 2);
    const diff = await diffNights(oldPath, newPath, { archiveDir: args.archive, signal });
    process.stdout.write(format === 'json' ? renderImageDiffJson(diff) : renderImageDiffMarkdown(diff));
  },
);
