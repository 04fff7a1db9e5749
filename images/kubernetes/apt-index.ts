/**
 * apt repository indexes (pure): deb822 stanzas, the SHA256 list of a Release file, and picking the newest package of a Kubernetes minor from a Packages index.
 */
import { compareDebianVersions } from '../../core/debian-version.ts';

export type Stanza = Record<string, string>;

/** Parses deb822 text (Packages, Release) into stanzas; continuation lines are kept joined by "\n". */
export function parseDeb822(text: string): Stanza[] {
  const stanzas: Stanza[] = [];
  let current: Stanza = {};
  let last: string | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (Object.keys(current).length) stanzas.push(current);
      current = {};
      last = undefined;
    } else if (/^\s/.test(line) && last) {
      current[last] += `\n${line.trim()}`;
    } else {
      const m = /^([^:\s]+):\s?(.*)$/.exec(line);
      if (!m) continue;
      last = m[1]!;
      current[last] = m[2]!;
    }
  }
  if (Object.keys(current).length) stanzas.push(current);
  return stanzas;
}

/** The signed text inside a clearsigned InRelease (dash-escaping undone). */
export function clearsignedBody(text: string): string {
  const start = text.indexOf('-----BEGIN PGP SIGNED MESSAGE-----');
  const sig = text.indexOf('-----BEGIN PGP SIGNATURE-----');
  if (start < 0 || sig < 0) throw new Error('not a clearsigned InRelease');
  const afterHeaders = text.indexOf('\n\n', start);
  return text
    .slice(afterHeaders + 2, sig)
    .split('\n')
    .map((l) => (l.startsWith('- ') ? l.slice(2) : l))
    .join('\n');
}

/** Release's `SHA256:` list: path → {sha256, size}. */
export function parseReleaseSha256(release: string): Record<string, { sha256: string; size: number }> {
  const [stanza] = parseDeb822(release);
  const out: Record<string, { sha256: string; size: number }> = {};
  for (const line of (stanza?.SHA256 ?? '').split('\n')) {
    const [sha256, size, path] = line.trim().split(/\s+/);
    if (sha256 && size && path && /^[0-9a-f]{64}$/.test(sha256)) out[path] = { sha256, size: Number(size) };
  }
  return out;
}

export interface RepoPackage {
  name: string;
  version: string;
  /** Path relative to the repository base. */
  filename: string;
  sha256: string;
  size: number;
  /** pkgs.k8s.io's indexes list every architecture's build of a version. */
  architecture: string;
  depends?: string;
}

export function parsePackagesIndex(text: string): RepoPackage[] {
  return parseDeb822(text)
    .filter((s) => s.Package && s.Version && s.Filename && s.SHA256)
    .map((s) => ({ name: s.Package!, version: s.Version!, filename: s.Filename!, sha256: s.SHA256!, size: Number(s.Size ?? 0), architecture: s.Architecture ?? '', depends: s.Depends }));
}

/**
 * The newest amd64 build of each wanted package. Kubernetes packages (kubelet, kubeadm, kubectl)
 * must belong to the minor (`1.37.x`); cri-tools and kubernetes-cni have their own numbering.
 */
export function selectNewest(index: RepoPackage[], wanted: readonly string[], minor: string, sameMinor: readonly string[], architecture = 'amd64'): { found: Record<string, RepoPackage>; missing: string[] } {
  const found: Record<string, RepoPackage> = {};
  for (const pkg of index) {
    if (!wanted.includes(pkg.name)) continue;
    if (pkg.architecture !== architecture && pkg.architecture !== 'all') continue;
    if (sameMinor.includes(pkg.name) && !pkg.version.startsWith(`${minor}.`)) continue;
    const best = found[pkg.name];
    if (!best || compareDebianVersions(pkg.version, best.version) > 0) found[pkg.name] = pkg;
  }
  return { found, missing: wanted.filter((n) => !found[n]) };
}
