/**
 * Content-addressed layer cache. A layer directory exists only when complete: it is built
 * in a temporary sibling and renamed into place, with a marker holding its inputs.
 */
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { IMAGE_FILES } from '../core/paths.ts';
import { removeTree } from '../core/remove-tree.ts';
import type { LayerPlan } from './recipe.ts';

export function isLayerComplete(layer: LayerPlan): boolean {
  return existsSync(`${layer.dir}/${IMAGE_FILES.complete}`);
}

interface LayerMarker {
  hash: string;
  inputs: unknown;
  builtAt: string;
  seconds: number;
}

export async function readLayerMarker(layer: LayerPlan): Promise<LayerMarker | undefined> {
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

/** Builds a layer unless it is cached. `build` fills the temporary directory it is given. */
export async function ensureLayer(layer: LayerPlan, build: (tmpDir: string) => Promise<void>): Promise<LayerResult> {
  if (isLayerComplete(layer)) return { cached: true, seconds: (await readLayerMarker(layer))?.seconds ?? 0 };
  const started = Date.now();
  await mkdir(dirname(layer.dir), { recursive: true });
  const tmp = `${layer.dir}.tmp-${process.pid}-${randomBytes(3).toString('hex')}`;
  await removeTree(tmp);
  await mkdir(tmp, { recursive: true });
  try {
    await build(tmp);
    const seconds = Math.round((Date.now() - started) / 100) / 10;
    const marker: LayerMarker = { hash: layer.hash, inputs: layer.inputs, builtAt: new Date().toISOString(), seconds };
    await writeFile(`${tmp}/${IMAGE_FILES.complete}`, JSON.stringify(marker, null, 2) + '\n');
    // Another build of the same inputs (a second lab:up sharing the cache) may have finished
    // first: its layer is the same by construction and may be in use, so ours is dropped.
    if (isLayerComplete(layer)) {
      await removeTree(tmp);
      return { cached: true, seconds };
    }
    await removeTree(layer.dir);
    try {
      await rename(tmp, layer.dir);
    } catch (error) {
      if (!isLayerComplete(layer)) throw error;
      await removeTree(tmp);
      return { cached: true, seconds };
    }
    return { cached: false, seconds };
  } catch (error) {
    // Keep the build log beside the cache for the user to read; drop the half-made layer.
    await rename(`${tmp}/build.log`, failedLogPath(layer)).catch(() => undefined);
    await removeTree(tmp);
    throw error;
  }
}

export async function removeLayer(layer: LayerPlan): Promise<void> {
  await removeTree(layer.dir);
}

/** Where a failed layer build leaves its log. */
export function failedLogPath(layer: LayerPlan): string {
  return `${layer.dir}.failed.log`;
}
