/** How image:build picks and uses a fetch route: the live mirror, an input archive or a snapshot. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabError } from '../../core/errors.ts';
import type { Progress } from '../../core/progress.ts';
import type { AptSource } from '../recipe.ts';
import type { ImageSource } from '../source.ts';
import { SNAPSHOT_TIMESTAMP } from './layout.ts';
import { fetchRouteArgs, isArchive, openArchiveRoute, openSnapshotRoute, type FetchRoute } from './route.ts';

export type BuildRoute = FetchRoute;

export async function openBuildRoute(opts: {
  debian: { snapshot?: string };
  sources: AptSource[];
  source: ImageSource;
  progress: Progress;
  signal?: AbortSignal;
}): Promise<BuildRoute | undefined> {
  const { artifactsDir, lock } = opts.source;
  let route: BuildRoute | undefined;
  if (artifactsDir && isArchive(artifactsDir)) {
    route = await openArchiveRoute({ dir: artifactsDir, lock, sources: opts.sources, });
  } else if (opts.debian.snapshot) {
    if (!SNAPSHOT_TIMESTAMP.test(opts.debian.snapshot)) throw new LabError(`debian.snapshot ${opts.debian.snapshot} is not a snapshot moment`, 'write it as snapshot.debian.org does: YYYYMMDDTHHMMSSZ, e.g. 20261201T091544Z');
    // Another service with snapshot.debian.org's URL scheme (a local copy; the tests' loopback server).
    const service = process.env.LABSMITH_SNAPSHOT_SERVICE;
    route = await openSnapshotRoute({ timestamp: opts.debian.snapshot, lock, sources: opts.sources, service, signal: opts.signal });
  }
  if (!route) return undefined;
  opts.progress.info(`Debian packages from ${route.describe}: each InRelease is the locked one and verified against the archive keyring`);
  for (const e of route.expired) {
    opts.progress.warn(`${e.suite}: its InRelease expired on ${e.validUntil}; accepted for this build from ${route.kind === 'archive' ? 'the archive' : 'the snapshot'} only (apt Acquire::Check-Valid-Until=false in this build's chroot; the signature is still checked)`);
  }
  return route;
}

/** Runs one mmdebstrap with the route's proxy up and its apt.conf in the chroot; a refused file fails the build naming it. */
export async function routedMmdebstrap<T>(route: BuildRoute, args: string[], runIt: (args: string[]) => Promise<T>): Promise<T> {
  const running = await route.start();
  const dir = await mkdtemp(join(tmpdir(), 'labsmith-fetch-'));
  try {
    const result = await runIt([...(await fetchRouteArgs(running, dir)), ...args]);
    if (running.problems.length) throw refused(route, running.problems);
    return result;
  } catch (error) {
    if (running.problems.length) throw refused(route, running.problems);
    throw error;
  } finally {
    await running.close();
    await rm(dir, { recursive: true, force: true });
  }
}

function refused(route: BuildRoute, problems: string[]): LabError {
  return new LabError(`${route.describe} served a file that failed its check:\n${problems.map((p) => `  - ${p}`).join('\n')}`, 'restore the archive from a good copy, or archive the lock again; nothing of this layer was cached');
}
