/**
 * The night's package list with origins: each installed binary package with its source
 * package (dpkg's `Source:` field) and the locked suite whose Packages index lists that exact
 * version, so the diff can tell a security update from a point-release one. Pure: the indexes
 * come from the input archive (input-archive.ts).
 */
import type { PackageStanza } from '../images/archive/layout.ts';
import type { PackageRecord } from './diff/model.ts';

/** Paragraphs of a deb822 file (dpkg status) as field maps; continuation lines are dropped. */
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

/** One suite's index, as a set of `name version` it lists. */
export interface SuiteIndex {
  suite: string;
  versions: Set<string>;
}

export function suiteIndex(suite: string, stanzas: PackageStanza[]): SuiteIndex {
  return { suite, versions: new Set(stanzas.map((s) => `${s.name} ${s.version}`)) };
}

/**
 * Installed packages from /var/lib/dpkg/status with source and origin. Suites are tried in the
 * order given (security first: a version in both counts as a security update); a package no
 * index lists gets `fallbackSuite` when one is given (e.g. pkgs.k8s.io for the Kubernetes packages).
 */
export function packageRecords(dpkgStatus: string, indexes: SuiteIndex[], fallbackSuite?: (name: string) => string | undefined): PackageRecord[] {
  const records: PackageRecord[] = [];
  for (const f of parseDeb822(dpkgStatus)) {
    if (f.get('Status') !== 'install ok installed' || !f.has('Package')) continue;
    const name = f.get('Package')!;
    const version = f.get('Version') ?? '';
    const suite = indexes.find((i) => i.versions.has(`${name} ${version}`))?.suite ?? fallbackSuite?.(name);
    records.push({ name, version, architecture: f.get('Architecture') ?? '', ...sourceOf(f), ...(suite ? { suite } : {}) });
  }
  return records.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Security suites first, then the others in their given order. */
export function securityFirst<T extends { suite: string }>(list: T[]): T[] {
  return [...list.filter((x) => x.suite.endsWith('-security')), ...list.filter((x) => !x.suite.endsWith('-security'))];
}
