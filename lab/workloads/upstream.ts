/** The add-on manifests the lock names, read from the cache where they are already (no network). */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UPSTREAM_MANIFEST_NAMES, type UpstreamTexts } from '../../cloud-init/addons/bundle.ts';
import { cacheRoot } from '../../core/paths.ts';
import { cachedLockedFile } from '../../images/artifacts/store.ts';
import { readImageLock, type ImageLock } from '../../images/lock/lock.ts';

export async function readCachedAddonManifests(lockPath: string, cacheDir: string = cacheRoot()): Promise<Partial<UpstreamTexts>> {
  return existsSync(lockPath) ? cachedAddonManifestsOf(await readImageLock(lockPath), cacheDir) : {};
}

export async function cachedAddonManifestsOf(lock: ImageLock, cacheDir: string = cacheRoot()): Promise<Partial<UpstreamTexts>> {
  const upstream: Partial<UpstreamTexts> = {};
  for (const name of UPSTREAM_MANIFEST_NAMES) {
    const entry = lock.manifests[name];
    const path = entry && (await cachedLockedFile(entry.url, entry.sha256, join(cacheDir, 'artifacts')));
    if (path) upstream[name] = await readFile(path, 'utf8');
  }
  return upstream;
}
