/** File system checks shared by the image cache and lab directories. */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LabError } from './errors.ts';

export async function ensureWritableDir(dir: string, what: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    const probe = join(dir, `.write-test-${process.pid}`);
    await writeFile(probe, '');
    await rm(probe);
  } catch (error) {
    throw new LabError(
      `cannot write ${what} at ${dir}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      'pick a writable directory (LABSMITH_CACHE_DIR / LABSMITH_STATE_DIR or stateDir in lab.yaml) or fix its permissions',
    );
  }
}
