#!/usr/bin/env -S npx tsx
// npm run nightly -- --out DIR [--force] [--keep N] [--baseline DIR] [--config lab.yaml] [--lock FILE] [--os-only] [--artifacts DIR]
import { resolve } from 'node:path';
import { LabError } from '../core/errors.ts';
import { runMain } from '../core/main.ts';
import { loadLabConfig } from '../config/load.ts';
import { DEFAULT_LOCK_FILE } from '../images/lock/lock.ts';
import { runNightly } from '../nightly/run.ts';

runMain(
  {
    string: ['out', 'keep', 'baseline', 'config', 'lock', 'artifacts'],
    boolean: ['force', 'os-only'],
    usage: `
npm run nightly -- --out DIR [options]
  --out DIR        where nights are published: DIR/YYYY-MM-DD[-N]/, DIR/latest (newest green night),
                   DIR/archive (the input archive nights share), DIR/last-run.md and .json
  --force          build even when the refreshed lock equals the last green night's
  --keep N         keep the newest N nights (and the one latest points to)
  --baseline DIR   compare against this night directory instead of the last green night in --out
  --config FILE    lab config (default: lab.yaml)
  --lock FILE      the lock the refresh starts from (default: ${DEFAULT_LOCK_FILE}; never written)
  --os-only        build and check the OS-only image (also chosen when the lock has no Kubernetes packages)
  --artifacts DIR  take locked files and image archives from DIR
  --json           one JSON event per line
  --verbose        stack traces on errors
Exit codes: 0 green or no change, 1 red, 2 bad input, 3 missing tools.`,
  },
  async ({ args, progress, signal }) => {
    if (!args.out) throw new LabError('--out DIR is required', 'npm run nightly -- --out /var/lib/labsmith/nightly', 2);
    const keep = args.keep === undefined ? undefined : Number(args.keep);
    if (keep !== undefined && !(Number.isInteger(keep) && keep >= 1)) throw new LabError(`--keep ${args.keep}: not a whole number ≥ 1`, 'e.g. --keep 14', 2);
    const config = await loadLabConfig(args.config);
    const result = await runNightly({
      config,
      outDir: resolve(String(args.out)),
      repoLock: resolve(args.lock ?? DEFAULT_LOCK_FILE),
      baselineDir: args.baseline,
      force: args.force,
      keep,
      osOnly: args['os-only'],
      artifactsDir: args.artifacts ? resolve(args.artifacts) : undefined,
      progress,
      signal,
    });
    process.stdout.write(result.reportMarkdown ?? `${result.message}\n`);
    process.stderr.write(`${result.message}\n`);
    return result.exitCode;
  },
);
