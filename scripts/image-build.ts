#!/usr/bin/env -S npx tsx
// npm run image:build -- [--config lab.yaml] [--lock FILE] [--artifacts DIR] [--os-only] [--stage-upgrade MINOR] [--rebuild] [--verify] [--verify-reproducible] [--json]
import { runMain } from '../core/main.ts';
import { loadLabConfig } from '../config/load.ts';
import { buildImage } from '../images/build.ts';
import { verifyReproducible, renderReproducibilityReport } from '../images/reproducible.ts';
import { IMAGE_SOURCE_USAGE, loadImageSource, type ImageSourceFlags } from '../images/source.ts';
import { renderImageSummary } from '../images/summary.ts';

runMain(
  {
    string: ['config', 'lock', 'artifacts', 'stage-upgrade'],
    boolean: ['rebuild', 'verify', 'verify-reproducible', 'os-only'],
    usage: `
npm run image:build -- [options]
  --config FILE            lab config (default: lab.yaml)
${IMAGE_SOURCE_USAGE}
  --rebuild                rebuild every layer even when cached
  --verify                 hash the cached disk in full (otherwise its size/mtime/inode stamp is trusted)
  --verify-reproducible    build twice from scratch and compare the disks
  --json                   one JSON event per line
  --verbose                stack traces on errors`,
  },
  async ({ args, progress, signal }) => {
    const config = await loadLabConfig(args.config);
    const source = await loadImageSource(config, args as ImageSourceFlags);
    if (args['verify-reproducible']) {
      const report = await verifyReproducible({ debian: config.debian, source, progress, signal });
      process.stdout.write(renderReproducibilityReport(report));
      return report.identical ? 0 : 1;
    }
    const image = await buildImage({ debian: config.debian, source, progress, signal, rebuild: args.rebuild, verify: args.verify });
    process.stdout.write(renderImageSummary(image));
  },
);
