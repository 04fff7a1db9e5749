#!/usr/bin/env -S npx tsx
// npm run image:lock -- [--config lab.yaml] [--lock FILE] [--only PART,...] [--kubernetes MINOR] [--strict]
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { LabError } from '../core/errors.ts';
import { runMain } from '../core/main.ts';
import { kubernetesMinorProblem } from '../config/formats.ts';
import { loadLabConfig } from '../config/load.ts';
import { DEFAULT_LOCK_FILE, diffImageLocks, readImageLock, writeImageLock } from '../images/lock/lock.ts';
import { REFRESH_PARTS, refreshLock, type RefreshPart } from '../images/lock/refresh.ts';

runMain(
  {
    string: ['config', 'lock', 'only', 'kubernetes'],
    boolean: ['strict'],
    usage: `
npm run image:lock -- [options]
  --config FILE   lab config (default: lab.yaml): Debian suite, Kubernetes minor, add-ons
  --lock FILE     the lock file to refresh (default: ${DEFAULT_LOCK_FILE})
  --only PARTS    refresh only these, comma-separated: ${REFRESH_PARTS.join(', ')}
  --kubernetes MINOR  also lock the next minor as the target section (packages, key, kubeadm's images,
                  add-ons, and Debian forky's containerd 2 when the minor needs it): for lab:upgrade
                  and image:build --stage-upgrade
  --strict        exit 1 when a part could not be reached (for nightly jobs)
  --json          one JSON event per line
  --verbose       stack traces on errors`,
  },
  async ({ args, progress, signal }) => {
    const config = await loadLabConfig(args.config);
    const path = resolve(args.lock ?? DEFAULT_LOCK_FILE);
    const parts = args.only ? (String(args.only).split(',') as RefreshPart[]) : undefined;
    const unknown = parts?.filter((p) => !REFRESH_PARTS.includes(p));
    if (unknown?.length) throw new LabError(`--only: unknown part ${unknown.join(', ')}`, `choose from ${REFRESH_PARTS.join(', ')}`, 2);
    const targetMinor = args.kubernetes === undefined ? undefined : String(args.kubernetes);
    const minorProblem = targetMinor === undefined ? undefined : kubernetesMinorProblem(targetMinor);
    if (minorProblem) throw new LabError(`--kubernetes: ${minorProblem}`, 'for example --kubernetes 1.38', 2);
    const previous = existsSync(path) ? await readImageLock(path) : undefined;
    const { lock, skipped } = await refreshLock({ config, previous, parts, targetMinor, signal, onPart: (p) => progress.info(`refreshing ${p}`) });
    const diff = diffImageLocks(previous, lock);
    await writeImageLock(path, lock);
    process.stdout.write(diff.length ? `${path}:\n${diff.map((l) => `  ${l}`).join('\n')}\n` : `${path}: unchanged\n`);
    for (const s of skipped) progress.warn(`${s.part}: kept the locked entries: ${s.reason}`);
    return args.strict && skipped.length ? 1 : 0;
  },
);
