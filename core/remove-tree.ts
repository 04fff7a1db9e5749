/**
 * Removes a build directory that may still hold mounts: mmdebstrap mounts /proc, /sys and
 * /dev/pts inside the chroot, and a build killed hard leaves them behind. Mounts under the
 * directory are detached first (deepest first), and removal never crosses a file system.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { run } from './exec.ts';

/** Mount points at or below `dir`, deepest first (pure, from /proc/self/mounts text). */
export function mountsUnder(mountsText: string, dir: string): string[] {
  const root = resolve(dir);
  return mountsText
    .split('\n')
    .map((line) => line.split(' ')[1])
    .filter((point): point is string => Boolean(point))
    // /proc/self/mounts escapes spaces and the like as octal.
    .map((point) => point.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8))))
    .filter((point) => point === root || point.startsWith(`${root}/`))
    .sort((a, b) => b.length - a.length);
}

export async function removeTree(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  const mounts = mountsUnder(await readFile('/proc/self/mounts', 'utf8').catch(() => ''), dir);
  for (const point of mounts) await run('umount', ['-l', point], { hint: `a build left ${point} mounted: unmount it by hand` });
  await run('rm', ['-rf', '--one-file-system', dir]);
}
