#!/usr/bin/env -S npx tsx
// npm run image:fetch-artifacts -- --out DIR [--lock FILE]
import { copyFile, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { LabError } from '../core/errors.ts';
import { runMain } from '../core/main.ts';
import { requireHostTools } from '../core/host-tools.ts';
import { resolveLockedInputs } from '../images/artifacts/store.ts';
import { KUBERNETES_PACKAGES } from '../images/kubernetes/repository.ts';
import { DEFAULT_LOCK_FILE, readImageLock } from '../images/lock/lock.ts';
import { UPSTREAM_MANIFEST_NAMES } from '../cloud-init/addons/bundle.ts';

runMain(
  {
    string: ['out', 'lock'],
    usage: `
npm run image:fetch-artifacts -- --out DIR [options]
  --out DIR       where to put every locked file and image archive (then: image:build -- --artifacts DIR)
  --lock FILE     the lock file (default: ${DEFAULT_LOCK_FILE})
  --json          one JSON event per line
  --verbose       stack traces on errors`,
  },
  async ({ args, progress, signal }) => {
    if (!args.out) throw new LabError('--out DIR is required', 'name a directory to fill, e.g. --out /media/usb/labsmith-artifacts', 2);
    await requireHostTools(['skopeo', 'gpg']);
    const out = resolve(String(args.out));
    const lockPath = resolve(args.lock ?? DEFAULT_LOCK_FILE);
    const lock = await readImageLock(lockPath);
    await mkdir(out, { recursive: true });
    progress.start('Fetching locked inputs');
    try {
      const resolved = await resolveLockedInputs(lock, { packages: KUBERNETES_PACKAGES, manifests: UPSTREAM_MANIFEST_NAMES, images: true }, { storeDir: out, signal, onItem: (w) => progress.info(w) });
      progress.end(true);
      // The lock travels with the files, so a restore knows what they are.
      await copyFile(lockPath, join(out, DEFAULT_LOCK_FILE));
      const count = 1 + Object.keys(resolved.debs).length + Object.keys(resolved.manifests).length + Object.keys(resolved.images).length;
      process.stdout.write(`${out}: ${count} verified inputs; build offline with: npm run image:build -- --artifacts ${out}\n`);
    } catch (error) {
      progress.end(false);
      throw error;
    }
  },
);
