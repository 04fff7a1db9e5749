/**
 * Debian changelogs (debian/changelog, shipped as /usr/share/doc/<pkg>/changelog.Debian.gz):
 * the entries between two versions and the CVE and DSA/DLA ids they name. Pure.
 */
import { compareDebianVersions } from '../../core/debian-version.ts';

export interface ChangelogEntry {
  source: string;
  version: string;
  distribution: string;
  urgency: string;
  /** The change lines, as written (leading two spaces removed). */
  changes: string[];
  /** The trailer's maintainer and date. */
  author: string;
  date: string;
}

const HEADER = /^(\S+) \(([^)]+)\) ([^;]+);(.*)$/;
const TRAILER = /^ -- (.+?)  (.+)$/;

export function parseDebianChangelog(text: string): ChangelogEntry[] {
  const entries: ChangelogEntry[] = [];
  let current: ChangelogEntry | undefined;
  for (const line of text.split('\n')) {
    const header = HEADER.exec(line);
    if (header) {
      current = { source: header[1]!, version: header[2]!, distribution: header[3]!.trim(), urgency: /urgency=(\S+)/.exec(header[4]!)?.[1] ?? '', changes: [], author: '', date: '' };
      entries.push(current);
      continue;
    }
    if (!current) continue;
    const trailer = TRAILER.exec(line);
    if (trailer) {
      current.author = trailer[1]!;
      current.date = trailer[2]!.trim();
      current = undefined;
    } else if (line.trim()) current.changes.push(line.replace(/^ {2}/, ''));
  }
  return entries;
}

/**
 * Entries newer than `oldVersion` up to and including `newVersion`. A package that was not there
 * before shows only the entry of its own version: its whole history is not news.
 */
export function changelogEntriesBetween(entries: ChangelogEntry[], oldVersion: string | undefined, newVersion: string): ChangelogEntry[] {
  if (oldVersion === undefined) return entries.filter((e) => compareDebianVersions(e.version, newVersion) === 0).slice(0, 1);
  return entries.filter((e) => compareDebianVersions(e.version, newVersion) <= 0 && compareDebianVersions(e.version, oldVersion) > 0);
}

/** The advisory ids an entry names: CVE-YYYY-N, DSA-N[-N], DLA-N[-N]; sorted, each once. */
export function advisoryIds(entries: ChangelogEntry[]): { cves: string[]; advisories: string[] } {
  const text = entries.flatMap((e) => e.changes).join('\n');
  const unique = (re: RegExp) => [...new Set([...text.matchAll(re)].map((m) => m[0].toUpperCase()))].sort(naturalOrder);
  return { cves: unique(/\bCVE-\d{4}-\d{4,}\b/gi), advisories: unique(/\bD[SL]A-\d+(?:-\d+)?\b/gi) };
}

function naturalOrder(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}
