/**
 * The night's package list with origins: each installed binary package with its source
 * package (dpkg's `Source:` field) and the locked suite whose Packages index lists that exact
 * version, so the diff can tell a security update from a point-release one. Parsing is pure;
 * reading the indexes (pinned by the lock's InRelease sha256) is readSuiteIndex.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchBytes } from '../core/download.ts';
import { LabError } from '../core/errors.ts';
import { run } from '../core/exec.ts';
import { sha256 } from '../core/hash.ts';
import type { ImageLock } from '../images/lock/lock.ts';
import type { PackageRecord } from './diff/model.ts';

/** Paragraphs of a deb822 file (dpkg status, Packages) as field maps; continuation lines are dropped. */
export function parseDeb822(text: string): Map<string, string>[] {
  const out: Map<string, string>[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    for (const line of stanza.split('\n')) {
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
      if (m) fields.set(m[1]!, m[2]!);
    }
    if (fields.size) out.push(fields);
  }
  return out;
}

/** `Source: name (version)` or `Source: name`, else the package is its own source. */
export function sourceOf(fields: Map<string, string>): { source: string; sourceVersion: string } {
  const m = /^(\S+)(?:\s+\(([^)]+)\))?$/.exec(fields.get('Source') ?? '');
  return { source: m?.[1] ?? fields.get('Package')!, sourceVersion: m?.[2] ?? fields.get('Version') ?? '' };
}

export interface IndexedPackage {
  name: string;
  version: string;
  architecture: string;
  filename: string;
  sha256: string;
  size: number;
}

/** A suite's Packages index: name → its entries (one per version). */
export type SuiteIndex = Map<string, IndexedPackage[]>;

export function parsePackagesIndex(text: string): SuiteIndex {
  const index: SuiteIndex = new Map();
  for (const f of parseDeb822(text)) {
    const name = f.get('Package');
    if (!name || !f.get('Filename') || !f.get('SHA256')) continue;
    const entry = { name, version: f.get('Version') ?? '', architecture: f.get('Architecture') ?? '', filename: f.get('Filename')!, sha256: f.get('SHA256')!, size: Number(f.get('Size') ?? 0) };
    index.set(name, [...(index.get(name) ?? []), entry]);
  }
  return index;
}

/** Installed packages from /var/lib/dpkg/status with source and origin; suites are tried in order (security first). */
export function packageRecords(dpkgStatus: string, indexes: { suite: string; index: SuiteIndex }[]): PackageRecord[] {
  const records: PackageRecord[] = [];
  for (const f of parseDeb822(dpkgStatus)) {
    if (f.get('Status') !== 'install ok installed' || !f.has('Package')) continue;
    const name = f.get('Package')!;
    const version = f.get('Version') ?? '';
    const suite = indexes.find(({ index }) => index.get(name)?.some((e) => e.version === version))?.suite;
    records.push({ name, version, architecture: f.get('Architecture') ?? '', ...sourceOf(f), ...(suite ? { suite } : {}) });
  }
  return records.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The sha256 and path of each index file an InRelease lists (its SHA256 section). */
export function parseReleaseSha256(text: string): Map<string, { sha256: string; size: number }> {
  const out = new Map<string, { sha256: string; size: number }>();
  const section = /^SHA256:\n((?: .*\n?)*)/m.exec(text)?.[1] ?? '';
  for (const line of section.split('\n')) {
    const m = /^\s*([0-9a-f]{64})\s+(\d+)\s+(\S+)$/.exec(line);
    if (m) out.set(m[3]!, { sha256: m[1]!, size: Number(m[2]) });
  }
  return out;
}

/**
 * Reads one locked suite's main/binary-amd64 index from its mirror: the InRelease must be the
 * one the lock pins (sha256), the Packages.xz must match the InRelease. A mirror that moved on is
 * an error naming the suite (the night's build would have refused it too).
 */
export async function readSuiteIndex(lock: ImageLock, suite: string, signal?: AbortSignal): Promise<SuiteIndex> {
  const locked = lock.debian.releases[suite];
  if (!locked) throw new LabError(`the lock has no suite ${suite}`, 'run `npm run image:lock`');
  const base = `${locked.uri.replace(/\/$/, '')}/dists/${suite}`;
  const inRelease = (await fetchBytes(`${base}/InRelease`, { signal })).toString('utf8');
  if (sha256(inRelease) !== locked.sha256) {
    throw new LabError(`${base}/InRelease is no longer the one the lock pins (${locked.date})`, 'the mirror moved since the night was built: read origins from the input archive instead');
  }
  const path = 'main/binary-amd64/Packages.xz';
  const expected = parseReleaseSha256(inRelease).get(path);
  if (!expected) throw new LabError(`${base}/InRelease lists no ${path}`, 'is this a Debian archive?');
  const xz = await fetchBytes(`${base}/${path}`, { signal, timeoutMs: 5 * 60_000 });
  if (sha256(xz) !== expected.sha256) throw new LabError(`${base}/${path} does not match its InRelease sha256`, 'a proxy or mirror served a changed file: try again later');
  return parsePackagesIndex(await decompressXz(xz));
}

async function decompressXz(data: Buffer): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'labsmith-index-'));
  try {
    await writeFile(join(dir, 'Packages.xz'), data);
    return (await run('xz', ['-dc', join(dir, 'Packages.xz')])).stdout;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
