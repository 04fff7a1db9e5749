/**
 * The input archive's layout and index (pure). Blobs are stored once by sha256 under
 * `blobs/`; each archived lock gets a view `locks/<lock id>/` of hard links to them: a partial
 * apt mirror per source under `mirror/<host>/<path>/` (InRelease, the Packages indexes it lists,
 * every installed .deb at its pool path), the Kubernetes inputs under `files/` and `images/`
 * (the layout `--artifacts DIR` always read), the lock itself and `index.json`
 * (lock entry → file → sha256). A blob no view links to is garbage (`--prune`).
 */
import { hashInputs } from '../../core/hash.ts';
import { renderImageLock, type ImageLock } from '../lock/lock.ts';
import type { AptSource } from '../recipe.ts';

export const ARCHIVE_MARKER = 'labsmith-archive.json';
export const ARCHIVE_FORMAT = { format: 'labsmith-input-archive', version: 1 } as const;
export const ARCHIVE_DIRS = { blobs: 'blobs', locks: 'locks', mirror: 'mirror' } as const;
export const VIEW_FILES = { lock: 'image.lock.json', index: 'index.json' } as const;

/** The indexes apt asks for per suite (main, amd64): the Packages variants and the English translations, when the InRelease lists them. */
export const ARCHIVED_INDEXES = [
  'main/binary-amd64/Packages.xz',
  'main/binary-amd64/Packages.gz',
  'main/i18n/Translation-en.xz',
  'main/i18n/Translation-en.bz2',
] as const;

export interface ArchivedFile {
  /** The lock entry this file belongs to, e.g. `debian.releases.trixie` or `kubernetes.packages.kubelet`. */
  entry: string;
  /** What it is, for messages: `InRelease`, `main/binary-amd64/Packages.xz`, `package bash 5.2.37-2+b5`. */
  what: string;
  /** Path inside the lock's view. */
  path: string;
  sha256: string;
  bytes: number;
}

export interface ArchiveIndex {
  lockId: string;
  /** The newest `Date:` among the lock's suites (ISO): what "newest N locks" orders by. */
  lockDate: string;
  archivedAt: string;
  /** The disk image the archived build made, as its SHA256SUMS recorded it. */
  image?: { inputsHash: string; kubernetes: boolean; files: Record<string, string> };
  files: ArchivedFile[];
}

/** A lock's identity: the hash of its canonical rendering (key order does not matter). */
export function lockId(lock: ImageLock): string {
  return hashInputs(renderImageLock(lock)).slice(0, 16);
}

export function lockDate(lock: ImageLock): string {
  const dates = Object.values(lock.debian.releases).map((r) => Date.parse(r.date)).filter((d) => !Number.isNaN(d));
  return new Date(dates.length ? Math.max(...dates) : 0).toISOString();
}

/** `http://deb.debian.org/debian` → `mirror/deb.debian.org/debian` (a view's partial mirror of that URI). */
export function mirrorDir(uri: string): string {
  const url = new URL(uri);
  const path = url.pathname.replace(/\/+$/, '');
  return `${ARCHIVE_DIRS.mirror}/${url.host}${path}`;
}

export function distsPath(source: AptSource, file: string): string {
  return `${mirrorDir(source.uri)}/dists/${source.suite}/${file}`;
}

export function blobPath(sha256: string): string {
  return `${ARCHIVE_DIRS.blobs}/${sha256.slice(0, 2)}/${sha256}`;
}

export function releaseEntry(suite: string): string {
  return `debian.releases.${suite}`;
}

/** snapshot.debian.org's archive name for a source: the security suite lives in `debian-security`. */
export function snapshotArchiveName(source: AptSource): 'debian' | 'debian-security' {
  return source.suite.endsWith('-security') ? 'debian-security' : 'debian';
}

/** `http://snapshot.debian.org` + source + `20261201T000000Z` → `http://snapshot.debian.org/archive/debian/20261201T000000Z` */
export function snapshotUri(base: string, source: AptSource, timestamp: string): string {
  return `${base.replace(/\/+$/, '')}/archive/${snapshotArchiveName(source)}/${timestamp}`;
}

export const SNAPSHOT_TIMESTAMP = /^\d{8}T\d{6}Z$/;

// ---- Release and Packages parsing -------------------------------------------------------

export interface ReleaseIndexEntry {
  sha256: string;
  bytes: number;
}

/** The signed text of a clearsigned InRelease (between the armor headers). */
export function signedText(inRelease: string): string {
  const start = inRelease.indexOf('\n\n', inRelease.indexOf('-----BEGIN PGP SIGNED MESSAGE-----'));
  const end = inRelease.indexOf('-----BEGIN PGP SIGNATURE-----');
  return start >= 0 && end > start ? inRelease.slice(start + 2, end) : inRelease;
}

/** The `SHA256:` section of a Release file: path → sha256 and size. */
export function parseReleaseSha256(release: string): Map<string, ReleaseIndexEntry> {
  const out = new Map<string, ReleaseIndexEntry>();
  let inSection = false;
  for (const line of signedText(release).split('\n')) {
    if (/^SHA256:\s*$/.test(line)) {
      inSection = true;
      continue;
    }
    if (!inSection) continue;
    const m = /^\s+([0-9a-f]{64})\s+(\d+)\s+(\S+)\s*$/.exec(line);
    if (!m) {
      if (!/^\s/.test(line)) inSection = false;
      continue;
    }
    out.set(m[3]!, { sha256: m[1]!, bytes: Number(m[2]) });
  }
  return out;
}

/** A Release field (`Valid-Until`, `Date`, `Acquire-By-Hash`). */
export function releaseField(release: string, field: string): string | undefined {
  const re = new RegExp(`^${field}:\\s*(.+)$`, 'm');
  return re.exec(signedText(release))?.[1]?.trim();
}

/** When the InRelease stops being valid (undefined: never). */
export function validUntil(release: string): Date | undefined {
  const field = releaseField(release, 'Valid-Until');
  if (!field) return undefined;
  const ms = Date.parse(field);
  return Number.isNaN(ms) ? undefined : new Date(ms);
}

export interface PackageStanza {
  name: string;
  version: string;
  architecture: string;
  filename: string;
  sha256: string;
  bytes: number;
}

/** The fields of a Packages index the archive needs, one per stanza. */
export function parsePackagesIndex(text: string): PackageStanza[] {
  const out: PackageStanza[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const f = new Map<string, string>();
    for (const line of stanza.split('\n')) {
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
      if (m) f.set(m[1]!, m[2]!);
    }
    if (!f.has('Package') || !f.has('Filename') || !f.has('SHA256')) continue;
    out.push({ name: f.get('Package')!, version: f.get('Version') ?? '', architecture: f.get('Architecture') ?? '', filename: f.get('Filename')!, sha256: f.get('SHA256')!, bytes: Number(f.get('Size') ?? 0) });
  }
  return out;
}

export function packageKey(p: { name: string; version: string; architecture: string }): string {
  return `${p.name}=${p.version}:${p.architecture}`;
}

/** Which pool files an installed set needs: every stanza (in any suite) with the installed name, version and architecture. */
export function planPoolFiles(
  installed: { name: string; version: string; architecture: string }[],
  indexes: { source: AptSource; packages: PackageStanza[] }[],
): { found: { source: AptSource; stanza: PackageStanza }[]; missing: string[] } {
  const bySource = indexes.map(({ source, packages }) => ({ source, map: new Map(packages.map((p) => [packageKey(p), p])) }));
  const found: { source: AptSource; stanza: PackageStanza }[] = [];
  const seen = new Set<string>();
  const missing: string[] = [];
  for (const pkg of installed) {
    let any = false;
    for (const { source, map } of bySource) {
      const stanza = map.get(packageKey(pkg));
      if (!stanza) continue;
      any = true;
      const key = `${mirrorDir(source.uri)}/${stanza.filename}`;
      if (seen.has(key)) continue;
      seen.add(key);
      found.push({ source, stanza });
    }
    if (!any) missing.push(`${pkg.name} ${pkg.version} (${pkg.architecture})`);
  }
  return { found, missing };
}
