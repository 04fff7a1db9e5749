/**
 * Reads the two sides of an image diff (night directories or bare manifest files) and the new
 * .debs' changelogs from the input archive, then plans the diff. The only effectful part of
 * `image:diff`.
 */
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { LabError } from '../../core/errors.ts';
import type { ImageManifest } from '../../images/manifest.ts';
import { readImageLock } from '../../images/lock/lock.ts';
import { findArchivedDeb } from '../input-archive.ts';
import { NIGHT_FILES, NIGHTS_DIR_FILES } from '../night-files.ts';
import { parseDebianChangelog, type ChangelogEntry } from './changelog.ts';
import { readDebChangelog } from './deb-changelog.ts';
import { diffPackages, planImageDiff, type ImageDiff, type NightRecord, type NightTimings, type NightVerdict, type PackageRecord } from './model.ts';

/** What night.json holds (written by the nightly's publish step). */
export interface NightSummary {
  name: string;
  date: string;
  green: boolean;
  verdict: NightVerdict;
  timings: NightTimings;
  osOnly: boolean;
  osOnlyReason?: string;
  /** The step that stopped a red night, with its message. */
  failedStep?: { title: string; message: string };
  baseline?: string;
  lockSha256: string;
}

async function readJson<T>(path: string, what: string): Promise<T> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (error) {
    throw new LabError(`cannot read ${what} ${path}: ${(error as Error).message}`, 'pass a night directory written by `npm run nightly` or an image manifest.json', 2);
  }
}

/** A night directory or a manifest file as the diff's record of one side. */
export async function loadNightRecord(path: string): Promise<NightRecord> {
  const full = resolve(path);
  if (!existsSync(full)) throw new LabError(`${path} does not exist`, 'pass a night directory (DIR/YYYY-MM-DD) or a manifest.json', 2);
  const isDir = statSync(full).isDirectory();
  const dir = isDir ? full : dirname(full);
  const manifest = await readJson<ImageManifest>(isDir ? join(dir, NIGHT_FILES.manifest) : full, 'the image manifest');
  if (!Array.isArray(manifest.packages) || !manifest.files) throw new LabError(`${path} is not an image manifest (no packages or files)`, 'pass the manifest.json an image build wrote', 2);
  const packagesFile = join(dir, NIGHT_FILES.packages);
  const packages: PackageRecord[] = existsSync(packagesFile)
    ? await readJson<PackageRecord[]>(packagesFile, 'the package list')
    : manifest.packages.map((p) => ({ ...p, source: p.name, sourceVersion: p.version }));
  const lockFile = join(dir, NIGHT_FILES.lock);
  const lock = existsSync(lockFile) ? await readImageLock(lockFile) : undefined;
  const nightFile = join(dir, NIGHT_FILES.night);
  const night = existsSync(nightFile) ? await readJson<NightSummary>(nightFile, 'the night summary') : undefined;
  return { name: isDir ? basename(dir) : path, manifest, packages, lock, verdict: night?.verdict, timings: night?.timings };
}

/** The input archive a night directory shares with its siblings (DIR/archive), if there is one. */
export function defaultArchiveDir(path: string): string | undefined {
  const full = resolve(path);
  const dir = existsSync(full) && statSync(full).isDirectory() ? full : dirname(full);
  const candidate = join(dirname(dir), NIGHTS_DIR_FILES.archive);
  return existsSync(candidate) ? candidate : undefined;
}

/** For each security update, the entries of the new .deb's changelog (tried binary by binary), or why there are none. */
export async function loadSecurityChangelogs(old: NightRecord, now: NightRecord, archiveDir: string | undefined, signal?: AbortSignal): Promise<Record<string, ChangelogEntry[] | { missing: string }>> {
  const out: Record<string, ChangelogEntry[] | { missing: string }> = {};
  const securitySuite = `${now.manifest.suite}-security`;
  for (const group of diffPackages(old.packages, now.packages, securitySuite).filter((g) => g.security)) {
    if (!archiveDir) {
      out[group.source] = { missing: 'no input archive was given (--archive DIR)' };
      continue;
    }
    const binaries = now.packages.filter((p) => p.source === group.source);
    binaries.sort((a, b) => (a.name === group.source ? -1 : b.name === group.source ? 1 : 0));
    let text: string | undefined;
    let tried = 0;
    for (const p of binaries) {
      const deb = await findArchivedDeb(archiveDir, p.name, p.version, p.architecture);
      if (!deb) continue;
      tried++;
      text = await readDebChangelog(deb, signal);
      if (text) break;
    }
    out[group.source] = text ? parseDebianChangelog(text) : { missing: tried ? 'its .debs ship no Debian changelog of their own' : `no .deb of ${group.source} ${group.new} in ${archiveDir}` };
  }
  return out;
}

export async function diffNights(oldPath: string, newPath: string, opts: { archiveDir?: string; signal?: AbortSignal } = {}): Promise<ImageDiff> {
  const old = await loadNightRecord(oldPath);
  const now = await loadNightRecord(newPath);
  const changelogs = await loadSecurityChangelogs(old, now, opts.archiveDir ?? defaultArchiveDir(newPath), opts.signal);
  return planImageDiff({ old, new: now, changelogs });
}
