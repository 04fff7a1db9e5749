/** Reads the mirror's current state (each suite's InRelease) so cached layers follow the archive. */
import { sha256 } from '../core/hash.ts';
import { LabError } from '../core/errors.ts';
import { fetchBytes, UnreachableError } from '../core/download.ts';
import type { AptSource } from './recipe.ts';

export interface MirrorState {
  releaseHashes: Record<string, string>;
  /** Each suite's `Date:` as written in its Release file. */
  dates: Record<string, string>;
  /** Newest `Date:` among the suites, in seconds: the default SOURCE_DATE_EPOCH. */
  newestDate: number;
}

export function inReleaseUrl(source: AptSource): string {
  return `${source.uri.replace(/\/$/, '')}/dists/${source.suite}/InRelease`;
}

/** Parses the `Date:` field of a Release/InRelease file (seconds since the epoch). */
export function parseReleaseDate(text: string): number | undefined {
  const field = releaseDateField(text);
  if (field === undefined) return undefined;
  const ms = Date.parse(field);
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
}

/** The `Date:` field as written. */
export function releaseDateField(text: string): string | undefined {
  return /^Date:\s*(.+)$/m.exec(text)?.[1]?.trim();
}

export async function readMirrorState(sources: AptSource[], signal?: AbortSignal): Promise<MirrorState> {
  const releaseHashes: Record<string, string> = {};
  const dates: Record<string, string> = {};
  let newestDate = 0;
  for (const source of sources) {
    const url = inReleaseUrl(source);
    let text: string;
    try {
      text = (await fetchBytes(url, { signal })).toString('utf8');
    } catch (error) {
      if (!(error instanceof UnreachableError)) throw error;
      throw new LabError(`cannot read ${url}: ${error.reason}`, 'check debian.mirror / debian.securityMirror and debian.suite in lab.yaml, and that this machine reaches the mirror');
    }
    const date = parseReleaseDate(text);
    if (date === undefined) throw new LabError(`${url} has no Date: field`, 'is debian.mirror a Debian archive?');
    releaseHashes[source.suite] = sha256(text);
    dates[source.suite] = releaseDateField(text)!;
    newestDate = Math.max(newestDate, date);
  }
  return { releaseHashes, dates, newestDate };
}
