/** The image manifest: what is inside and how it was made (pure). */

export interface InstalledPackage {
  name: string;
  version: string;
  architecture: string;
}

/** Parses /var/lib/dpkg/status, keeping installed packages, sorted by name. */
export function parseDpkgStatus(text: string): InstalledPackage[] {
  const packages: InstalledPackage[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    for (const line of stanza.split('\n')) {
      const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
      if (m) fields.set(m[1]!, m[2]!);
    }
    if (fields.get('Status') === 'install ok installed' && fields.has('Package')) {
      packages.push({ name: fields.get('Package')!, version: fields.get('Version') ?? '', architecture: fields.get('Architecture') ?? '' });
    }
  }
  return packages.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export interface ImageManifest {
  inputsHash: string;
  suite: string;
  sources: { uri: string; suite: string }[];
  sourceDateEpoch: number;
  layers: Record<string, string>;
  files: Record<string, { bytes: number; sha256: string }>;
  rawBytes: number;
  packages: InstalledPackage[];
  buildSeconds: Record<string, number>;
  /** A Kubernetes image: the minor and every container image baked in (absent for OS-only). */
  kubernetes?: { minor: string; images: string[] };
}

export function renderSha256Sums(files: Record<string, { sha256: string }>): string {
  return Object.entries(files)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([name, f]) => `${f.sha256}  ${name}\n`)
    .join('');
}

export function parseSha256Sums(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]{64})\s+\*?(.+)$/.exec(line.trim());
    if (m) out[m[2]!] = m[1]!;
  }
  return out;
}
