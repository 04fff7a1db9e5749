/**
 * Debian's containerd 2 for images whose suite ships 1.7 (trixie): one package taken from a newer
 * suite (forky), pinned by version and sha256. Reading it checks what apt would: the suite's
 * InRelease signed by the Debian archive keyring (gpgv), the Packages index against the sha256
 * InRelease lists, the package's stanza from that index. The apt preference keeps apt from taking
 * anything else from that suite, and from moving containerd off the locked version.
 */
import { gunzipSync } from 'node:zlib';
import { compareDebianVersions } from '../../core/debian-version.ts';
import { fetchBytes, type FetchOptions } from '../../core/download.ts';
import { LabError } from '../../core/errors.ts';
import { sha256 } from '../../core/hash.ts';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../core/exec.ts';
import { DEBIAN_ARCHIVE_KEYRING } from '../../core/paths.ts';
import type { LockedDebianPackage } from '../lock/lock.ts';
import { clearsignedBody, parseDeb822, parseReleaseSha256 } from './apt-index.ts';

/** Where containerd 2 comes from: Debian forky has 2.1.9, which installs on trixie (Depends: runc, libc6 >= 2.34). */
export const CONTAINERD2_SOURCE = { suite: 'forky', component: 'main', package: 'containerd', major: '2' } as const;

export interface DebianPackageQuery {
  mirror: string;
  suite: string;
  component: string;
  name: string;
  /** Only versions starting with this (e.g. "2." for containerd 2). */
  versionPrefix?: string;
  architecture?: string;
  keyring?: string;
}

/** The stanza texts of a Packages index, each as written (pure). */
export function splitStanzas(text: string): string[] {
  return text.split(/\n\s*\n/).map((s) => s.trim()).filter((s) => s !== '');
}

/** The newest build of a package in a Packages index, as a lock entry without the release (pure). */
export function pickDebianPackage(indexText: string, q: Pick<DebianPackageQuery, 'name' | 'versionPrefix' | 'architecture'>, mirror: string): Omit<LockedDebianPackage, 'suite' | 'release'> | undefined {
  const arch = q.architecture ?? 'amd64';
  let best: { stanza: string; fields: Record<string, string> } | undefined;
  for (const stanza of splitStanzas(indexText)) {
    if (!stanza.startsWith(`Package: ${q.name}\n`)) continue;
    const fields = parseDeb822(stanza)[0]!;
    if (fields.Architecture !== arch && fields.Architecture !== 'all') continue;
    if (q.versionPrefix && !fields.Version?.replace(/^\d+:/, '').startsWith(q.versionPrefix)) continue;
    if (!best || compareDebianVersions(fields.Version!, best.fields.Version!) > 0) best = { stanza, fields };
  }
  if (!best) return undefined;
  const f = best.fields;
  return { name: q.name, version: f.Version!, url: new URL(f.Filename!, mirror.endsWith('/') ? mirror : `${mirror}/`).href, sha256: f.SHA256!, size: Number(f.Size ?? 0), stanza: `${best.stanza}\n` };
}

/** gpgv on the InRelease against the keyring; the signed text, or an error naming the file. */
async function verifiedInRelease(bytes: Buffer, keyring: string, url: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'labsmith-gpgv-'));
  try {
    await writeFile(join(dir, 'InRelease'), bytes);
    const r = await run('gpgv', ['--keyring', keyring, join(dir, 'InRelease')], { allowFailure: true });
    if (r.exitCode !== 0) throw new LabError(`${url} does not verify against ${keyring}: ${r.stderr.trim().split('\n').slice(-1)[0]}`, 'do not use this mirror until the signature is explained; install debian-archive-keyring if it is missing');
    return clearsignedBody(bytes.toString('utf8'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Reads one package from a Debian suite, every step verified; unreachable mirrors throw UnreachableError. */
export async function readDebianPackage(q: DebianPackageQuery, opts: FetchOptions = {}): Promise<LockedDebianPackage> {
  const base = q.mirror.replace(/\/$/, '');
  const arch = q.architecture ?? 'amd64';
  const inReleaseUrl = `${base}/dists/${q.suite}/InRelease`;
  const inRelease = await fetchBytes(inReleaseUrl, opts);
  const signed = await verifiedInRelease(inRelease, q.keyring ?? DEBIAN_ARCHIVE_KEYRING, inReleaseUrl);
  const listed = parseReleaseSha256(signed);
  const indexPath = `${q.component}/binary-${arch}/Packages.gz`;
  const entry = listed[indexPath];
  if (!entry) throw new LabError(`${inReleaseUrl} lists no ${indexPath}`, `is ${q.suite} a Debian suite with ${q.component}?`);
  const raw = await fetchBytes(`${base}/dists/${q.suite}/${indexPath}`, { ...opts, timeoutMs: opts.timeoutMs ?? 300_000 });
  if (sha256(raw) !== entry.sha256) throw new LabError(`${base}/dists/${q.suite}/${indexPath} does not match the sha256 its InRelease lists`, 'the mirror is being updated; run image:lock again in a few minutes');
  const picked = pickDebianPackage(gunzipSync(raw).toString('utf8'), q, base);
  if (!picked) throw new LabError(`${q.suite} has no ${q.name}${q.versionPrefix ? ` ${q.versionPrefix}x` : ''} for ${arch}`, `check ${base}/dists/${q.suite}`);
  return { ...picked, suite: q.suite, release: { uri: base, sha256: sha256(inRelease), date: /^Date:\s*(.+)$/m.exec(signed)?.[1]?.trim() ?? '' } };
}

/**
 * The apt preference that takes only this package, at exactly the locked version: nothing else
 * from its suite (priority -1), and containerd held at the version (1001 also blocks a move back
 * to the image suite's 1.7 or on to a newer 2.x).
 */
export function renderContainerdPreference(pkg: Pick<LockedDebianPackage, 'name' | 'version' | 'suite'>): string {
  return `# Written by labsmith: only ${pkg.name} comes from ${pkg.suite}, at the locked version.
Package: *
Pin: release n=${pkg.suite}
Pin-Priority: -1

Package: ${pkg.name}
Pin: version ${pkg.version}
Pin-Priority: 1001
`;
}
