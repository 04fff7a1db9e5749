/**
 * The few things the nightly needs from the input archive (issue 10): put a locked .deb in it
 * and find one again by package, version and architecture. Debs sit at their pool paths under
 * `<archive>/<suite>/`, verified by the sha256 of the suite's Packages index.
 *
 * Until `image:archive` lands this module archives only the .debs that came from the security
 * and updates suites (the ones the report reads changelogs from); findArchivedDeb looks up any
 * deb at a pool path, so it reads the full archive as well.
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { downloadFile } from '../core/download.ts';
import { sha256File } from '../core/hash.ts';
import type { ImageLock } from '../images/lock/lock.ts';
import type { PackageRecord } from './diff/model.ts';
import type { SuiteIndex } from './packages.ts';

/** `name_version_arch.deb` as pool paths spell it (no epoch). */
export function debFileName(name: string, version: string, architecture: string): string {
  return `${name}_${version.replace(/^\d+:/, '')}_${architecture}.deb`;
}

export interface ArchivedDebs {
  added: string[];
  present: string[];
}

/** Downloads (verified) into the archive each package whose version one of `suites` lists; already-archived files are kept. */
export async function archiveDebs(archiveDir: string, lock: ImageLock, packages: PackageRecord[], indexes: Record<string, SuiteIndex>, signal?: AbortSignal): Promise<ArchivedDebs> {
  const result: ArchivedDebs = { added: [], present: [] };
  for (const p of packages) {
    if (!p.suite || !indexes[p.suite]) continue;
    const entry = indexes[p.suite]!.get(p.name)?.find((e) => e.version === p.version);
    if (!entry) continue;
    const dest = join(archiveDir, p.suite, entry.filename);
    if (existsSync(dest) && (await sha256File(dest)) === entry.sha256) {
      result.present.push(dest);
      continue;
    }
    const uri = lock.debian.releases[p.suite]!.uri.replace(/\/$/, '');
    await downloadFile(`${uri}/${entry.filename}`, dest, { sha256: entry.sha256, signal });
    result.added.push(dest);
  }
  return result;
}

/** The archived .deb of one package version, searched by file name anywhere under the archive. */
export async function findArchivedDeb(archiveDir: string, name: string, version: string, architecture: string): Promise<string | undefined> {
  const wanted = new Set([debFileName(name, version, architecture), debFileName(name, version, 'all'), debFileName(name, version.replace(':', '%3a'), architecture)]);
  const walk = async (dir: string): Promise<string | undefined> => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        const found = await walk(path);
        if (found) return found;
      } else if (wanted.has(basename(path))) return path;
    }
    return undefined;
  };
  return existsSync(archiveDir) ? walk(archiveDir) : undefined;
}
