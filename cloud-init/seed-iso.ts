/** Writes the NoCloud seed: the files, then an ISO 9660 image labelled "cidata". */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../core/exec.ts';
import type { SeedFiles } from './user-data.ts';

export const SEED_VOLUME_ID = 'cidata';

export async function writeSeedFiles(dir: string, files: SeedFiles): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const [name, content] of Object.entries(files)) {
    // user-data carries the lab's TLS key: owner-only like every per-lab secret.
    await writeFile(join(dir, name), content, { mode: 0o600 });
    await chmod(join(dir, name), 0o600);
  }
}

export async function writeSeedIso(seedDir: string, isoPath: string, signal?: AbortSignal): Promise<void> {
  await run(
    'xorriso',
    ['-as', 'mkisofs', '-quiet', '-output', isoPath, '-volid', SEED_VOLUME_ID, '-joliet', '-rock', join(seedDir, 'user-data'), join(seedDir, 'meta-data'), join(seedDir, 'network-config')],
    { signal, hint: 'xorriso writes the cloud-init seed: apt-get install xorriso' },
  );
  await chmod(isoPath, 0o600);
}
