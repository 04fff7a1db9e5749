/**
 * Content-addressed layer cache. A layer directory exists only when complete: it is built in
 * a private temporary sibling, its marker written there, and renamed into place. A build never
 * deletes a finished layer another build made: if one is there first, the later build drops its
 * own copy (rename fails on a non-empty directory, so the check and the move are one step).
 */
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { IMAGE_FILES } from '../core/paths.ts';
import { removeTree } from '../core/remove-tree.ts';
import type { LayerPlan } from './recipe.ts';

type CachedLayer = Pick<LayerPlan, 'name' | 'hash' | 'dir' | 'inputs'>;

export function isLayerComplete(layer: Pick<LayerPlan, 'dir'>): boolean {
  return existsSync(`${layer.dir}/${IMAGE_FILES.complete}`);
}

interface LayerMarker {
  hash: string;
  inputs: unknown;
  builtAt: string;
  seconds: number;
}

export async function readLayerMarker(layer: Pick<LayerPlan, 'dir'>): Promise<LayerMarker | undefined> {
  try {
    return JSON.parse(await readFile(`${layer.dir}/${IMAGE_FILES.complete}`, 'utf8'));
  } catch {
    return undefined;
  }
}

export interface LayerResult {
  cached: boolean;
  /** How long the layer took to build (when cached: when it was built). */
  seconds: number;
}

export interface EnsureLayerOptions {
  /** Build even when cached; the cached copy is replaced once the new one is complete. */
  rebuild?: boolean;
}

const TMP_INFIX = '.tmp-';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes build directories of this layer left by builds that died (their process is gone); never another live build's. */
export async function removeDeadBuilds(layer: Pick<LayerPlan, 'dir'>): Promise<string[]> {
  const prefix = `${basename(layer.dir)}${TMP_INFIX}`;
  const removed: string[] = [];
  for (const name of await readdir(dirname(layer.dir)).catch(() => [] as string[])) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split('-')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || isAlive(pid)) continue;
    await removeTree(join(dirname(layer.dir), name));
    removed.push(name);
  }
  return removed;
}

/** Moves `tmp` into place as the layer. False when a complete layer is already there (then `tmp` is left to the caller). */
async function publish(tmp: string, layer: CachedLayer, replace: boolean): Promise<boolean> {
  for (let attempt = 0; attempt < 3; attempt++) {
    if (existsSync(layer.dir) && (replace || !isLayerComplete(layer))) {
      // A rebuild's old copy, or an incomplete directory (from before layers were renamed into
      // place): moved aside in one step, then removed unless it turns out to be a complete layer.
      const aside = `${layer.dir}${TMP_INFIX}${process.pid}-old-${randomBytes(3).toString('hex')}`;
      await rename(layer.dir, aside).catch(() => undefined);
      if (existsSync(aside) && isLayerComplete({ dir: aside }) && !replace) await rename(aside, layer.dir).catch(() => undefined);
      if (existsSync(aside)) await removeTree(aside);
      replace = false;
    }
    try {
      await rename(tmp, layer.dir);
      return true;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
      if (isLayerComplete(layer)) return false;
    }
  }
  throw new Error(`could not move the built layer into ${layer.dir}: something keeps recreating it`);
}

/** Builds a layer unless it is cached. `build` fills the private temporary directory it is given. */
export async function ensureLayer(layer: CachedLayer, build: (tmpDir: string) => Promise<void>, opts: EnsureLayerOptions = {}): Promise<LayerResult> {
  if (!opts.rebuild && isLayerComplete(layer)) return { cached: true, seconds: (await readLayerMarker(layer))?.seconds ?? 0 };
  const started = Date.now();
  await mkdir(dirname(layer.dir), { recursive: true });
  await removeDeadBuilds(layer);
  const tmp = `${layer.dir}${TMP_INFIX}${process.pid}-${randomBytes(3).toString('hex')}`;
  await mkdir(tmp);
  try {
    await build(tmp);
    const seconds = Math.round((Date.now() - started) / 100) / 10;
    const marker: LayerMarker = { hash: layer.hash, inputs: layer.inputs, builtAt: new Date().toISOString(), seconds };
    await writeFile(`${tmp}/${IMAGE_FILES.complete}`, JSON.stringify(marker, null, 2) + '\n');
    // Another build of the same inputs (a second lab:up sharing the cache) may have finished
    // first: its layer is the same by construction and may be in use, so ours is dropped.
    if (await publish(tmp, layer, Boolean(opts.rebuild))) return { cached: false, seconds };
    await removeTree(tmp);
    return { cached: true, seconds };
  } catch (error) {
    // Keep the build log beside the cache for the user to read; drop the half-made layer.
    await rename(`${tmp}/build.log`, failedLogPath(layer)).catch(() => undefined);
    await removeTree(tmp);
    throw error;
  }
}

/** Where a failed layer build leaves its log. */
export function failedLogPath(layer: Pick<LayerPlan, 'dir'>): string {
  return `${layer.dir}.failed.log`;
}
