/** Writes rendered file trees to disk. */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { FileSpec } from './boot-files.ts';

export async function writeFileTree(root: string, files: Record<string, FileSpec>): Promise<void> {
  for (const [path, spec] of Object.entries(files)) {
    const target = join(root, path);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, spec.content);
    await chmod(target, spec.mode);
  }
}
