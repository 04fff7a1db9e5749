#!/usr/bin/env -S npx tsx
// npm run image:build -- [--config lab.yaml] [--rebuild] [--verify-reproducible] [--json]
import { runMain } from '../core/main.ts';
import { loadLabConfig } from '../lab/config/load.ts';
import { buildImage } from '../images/build.ts';
import { verifyReproducible, renderReproducibilityReport } from '../images/reproducible.ts';
import { renderImageSummary } from '../images/summary.ts';

runMain(
  {
    string: ['config'],
    boolean: ['rebuild', 'verify-reproducible'],
    usage: `
npm run image:build -- [options]
  --config FILE            lab config (default: lab.yaml)
  --rebuild                rebuild every layer even when cached
  --verify-reproducible    build twice from scratch and compare the disks
  --json                   one JSON event per line
  --verbose                stack traces on errors`,
  },
  async ({ args, progress, signal }) => {
    const config = await loadLabConfig(args.config);
    if (args['verify-reproducible']) {
      const report = await verifyReproducible({ debian: config.debian, progress, signal });
      process.stdout.write(renderReproducibilityReport(report));
      return report.identical ? 0 : 1;
    }
    const image = await buildImage({ debian: config.debian, progress, signal, rebuild: args.rebuild });
    process.stdout.write(renderImageSummary(image));
  },
);
