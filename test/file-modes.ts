/** Test helper: what under a directory group or others may read. */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** Files and directories under `dir` with any group or other permission bit, as "path mode". */
export async function filesOpenToOthers(dir: string): Promise<string[]> {
  const open: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isSymbolicLink() || entry.isSocket()) continue;
    const path = join(entry.parentPath, entry.name);
    // Provider plugins terraform downloads are programs, not secrets.
    if (path.includes('/.terraform/providers/')) continue;
    const mode = (await stat(path)).mode & 0o777;
    if (mode & 0o077) open.push(`${path} ${mode.toString(8)}`);
  }
  return open;
}
