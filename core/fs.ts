/** File system checks shared by the image cache and lab directories. */
import { chmod, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { LabError } from './errors.ts';

/**
 * Creates `dir` (each missing level with `mode`, so a lab directory is 0700 from its first
 * mkdir) and proves it writable. Levels are made one by one: Node's recursive mkdir reports
 * a read-only file system as ENOENT, and the user needs the real reason and the real path.
 */
export async function ensureWritableDir(dir: string, what: string, opts: { mode?: number } = {}): Promise<void> {
  const target = resolve(dir);
  let failedAt = target;
  try {
    const missing: string[] = [];
    for (let level = target; ; level = dirname(level)) {
      const found = await stat(level).catch((error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? undefined : Promise.reject(error)));
      if (found) {
        if (!found.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
        break;
      }
      missing.unshift(level);
      if (dirname(level) === level) break;
    }
    for (const level of missing) {
      failedAt = level;
      await mkdir(level, { mode: opts.mode ?? 0o755 }).catch((error: NodeJS.ErrnoException) => (error.code === 'EEXIST' ? undefined : Promise.reject(error)));
    }
    failedAt = target;
    const probe = join(target, `.write-test-${process.pid}`);
    await writeFile(probe, '', { flag: 'wx' });
    await rm(probe);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    const where = failedAt === target ? target : `${target} (creating ${failedAt})`;
    throw new LabError(
      `cannot write ${what} at ${where}: ${code}${code === 'EROFS' ? ' (read-only file system)' : code === 'EACCES' || code === 'EPERM' ? ' (permission denied)' : ''}`,
      'pick a writable directory (LABSMITH_CACHE_DIR / LABSMITH_STATE_DIR or stateDir in lab.yaml) or fix its permissions',
    );
  }
}

/** Takes group and other permissions off every file and directory under `dir` (symlinks are left alone). */
export async function restrictToOwner(dir: string): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isSymbolicLink()) continue;
    const { mode } = await stat(path);
    if (mode & 0o077) await chmod(path, mode & 0o700);
    if (entry.isDirectory()) await restrictToOwner(path);
  }
}
