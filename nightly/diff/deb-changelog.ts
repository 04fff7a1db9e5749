/** Reads a .deb's Debian changelog (usr/share/doc/<pkg>/changelog.Debian.gz) with dpkg-deb. */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { run } from '../../core/exec.ts';

/** The changelog text, or undefined when the package ships none of its own (its doc dir links to another package's). */
export async function readDebChangelog(deb: string, signal?: AbortSignal): Promise<string | undefined> {
  const dir = await mkdtemp(join(tmpdir(), 'labsmith-deb-'));
  try {
    // Only the doc files leave the package: a kernel .deb is a hundred megabytes.
    await run('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -x -f - -C "$2" --wildcards "./usr/share/doc/*/changelog*.gz"', 'sh', deb, dir], { signal, allowFailure: true });
    await run('dpkg-deb', ['--info', deb], { signal, hint: `${deb} is not a readable .deb` });
    const docs = join(dir, 'usr/share/doc');
    for (const name of await readdir(docs).catch(() => [] as string[])) {
      for (const file of ['changelog.Debian.gz', 'changelog.gz']) {
        const path = join(docs, name, file);
        if (existsSync(path)) {
          const text = gunzipSync(await readFile(path)).toString('utf8');
          // changelog.gz may be the upstream one: only a Debian-format one counts.
          if (/^\S+ \([^)]+\) [^;]+;/.test(text)) return text;
        }
      }
    }
    return undefined;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
