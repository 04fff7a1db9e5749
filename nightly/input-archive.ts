/**
 * What the nightly takes from the input archive (images/archive, issue 10): archive a built
 * image's inputs, read the locked suites' Packages indexes back from the archived view (offline,
 * verified when archived), and find the archived .deb of one package version.
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { BuiltImage } from '../images/build.ts';
import { installedPackages } from '../images/archive/archive-image.ts';
import { archiveBuild, type ArchiveResult } from '../images/archive/collect.ts';
import { ARCHIVE_DIRS, distsPath } from '../images/archive/layout.ts';
import { readPackagesIndex } from '../images/archive/verify.ts';
import type { ImageLock } from '../images/lock/lock.ts';
import type { AptSource } from '../images/recipe.ts';
import { suiteIndex, type SuiteIndex } from './packages.ts';

const PACKAGES_INDEX = 'main/binary-amd64/Packages.xz';

/** Archives every input of the night's build into the shared archive; returns the lock's view. */
export async function archiveNightInputs(archiveDir: string, image: BuiltImage, lock: ImageLock, sources: AptSource[], opts: { signal?: AbortSignal; onItem?: (what: string) => void } = {}): Promise<ArchiveResult> {
  return archiveBuild({
    out: archiveDir,
    lock,
    sources,
    installed: await installedPackages(image, lock),
    kubernetes: image.resolved,
    image: { inputsHash: image.manifest.inputsHash, kubernetes: Boolean(image.manifest.kubernetes), files: Object.fromEntries(Object.entries(image.manifest.files).map(([n, f]) => [n, f.sha256])) },
    signal: opts.signal,
    onItem: opts.onItem,
  });
}

/** Each source's Packages index as archived in the lock's view. */
export async function readArchivedIndexes(view: string, sources: AptSource[]): Promise<SuiteIndex[]> {
  const out: SuiteIndex[] = [];
  for (const source of sources) out.push(suiteIndex(source.suite, await readPackagesIndex(join(view, distsPath(source, PACKAGES_INDEX)), PACKAGES_INDEX)));
  return out;
}

/** `name_version_arch.deb` as pool paths spell it (no epoch). */
export function debFileName(name: string, version: string, architecture: string): string {
  return `${name}_${version.replace(/^\d+:/, '')}_${architecture}.deb`;
}

/** The archived .deb of one package version, searched by file name under the archive's lock views. */
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
  const views = join(archiveDir, ARCHIVE_DIRS.locks);
  return existsSync(views) ? walk(views) : undefined;
}
