/** Blobs by sha256 and per-lock views of hard links to them (effectful). */
import { existsSync } from 'node:fs';
import { link, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { LabError } from '../../core/errors.ts';
import { sha256File } from '../../core/hash.ts';
import { removeTree } from '../../core/remove-tree.ts';
import { ARCHIVE_DIRS, ARCHIVE_FORMAT, ARCHIVE_MARKER, blobPath, VIEW_FILES, type ArchiveIndex } from './layout.ts';

export function isArchive(dir: string): boolean {
  return existsSync(join(dir, ARCHIVE_MARKER));
}

export async function initArchive(dir: string): Promise<void> {
  await mkdir(join(dir, ARCHIVE_DIRS.blobs), { recursive: true });
  await mkdir(join(dir, ARCHIVE_DIRS.locks), { recursive: true });
  if (!isArchive(dir)) await writeFile(join(dir, ARCHIVE_MARKER), JSON.stringify(ARCHIVE_FORMAT) + '\n');
}

export interface BlobStore {
  dir: string;
  /** Bytes of blobs this run wrote (what the build added to the archive). */
  addedBytes: number;
  addedFiles: number;
}

/** Moves a verified file into the store under its sha256 (or drops it when the blob exists); returns the blob path. */
export async function storeBlob(store: BlobStore, file: string, sha256: string): Promise<string> {
  const blob = join(store.dir, blobPath(sha256));
  if (existsSync(blob)) {
    await rm(file, { force: true });
    return blob;
  }
  await mkdir(dirname(blob), { recursive: true });
  const bytes = (await stat(file)).size;
  await rename(file, blob);
  store.addedBytes += bytes;
  store.addedFiles += 1;
  return blob;
}

/** Copies a file that must stay where it is (the layer cache's downloads) into the store. */
export async function storeCopy(store: BlobStore, file: string): Promise<{ blob: string; sha256: string; bytes: number }> {
  const sha256 = await sha256File(file);
  const bytes = (await stat(file)).size;
  const blob = join(store.dir, blobPath(sha256));
  if (!existsSync(blob)) {
    const tmp = join(store.dir, ARCHIVE_DIRS.blobs, `.in-${process.pid}-${randomBytes(4).toString('hex')}`);
    await writeFile(tmp, await readFile(file));
    await storeBlob(store, tmp, sha256);
  }
  return { blob, sha256, bytes };
}

export function blobExists(store: BlobStore, sha256: string): boolean {
  return existsSync(join(store.dir, blobPath(sha256)));
}

export function tmpBlobPath(store: BlobStore): string {
  return join(store.dir, ARCHIVE_DIRS.blobs, `.in-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** Writes a lock's view (hard links to blobs + index + lock) next to the old one and swaps it in. */
export async function writeView(archiveDir: string, index: ArchiveIndex, lockText: string, links: { path: string; sha256: string }[]): Promise<string> {
  const view = join(archiveDir, ARCHIVE_DIRS.locks, index.lockId);
  const tmp = `${view}.tmp-${process.pid}`;
  await removeTree(tmp);
  for (const l of links) {
    const to = join(tmp, l.path);
    await mkdir(dirname(to), { recursive: true });
    if (!existsSync(to)) await link(join(archiveDir, blobPath(l.sha256)), to);
  }
  await writeFile(join(tmp, VIEW_FILES.lock), lockText);
  await writeFile(join(tmp, VIEW_FILES.index), JSON.stringify(index, null, 2) + '\n');
  await removeTree(view);
  await rename(tmp, view);
  return view;
}

export async function readIndex(view: string): Promise<ArchiveIndex> {
  try {
    return JSON.parse(await readFile(join(view, VIEW_FILES.index), 'utf8')) as ArchiveIndex;
  } catch {
    throw new LabError(`${join(view, VIEW_FILES.index)} is missing or not JSON`, 'the archive view is damaged: archive the lock again with `npm run image:archive -- --out DIR`');
  }
}

export async function listViews(archiveDir: string): Promise<ArchiveIndex[]> {
  const locks = join(archiveDir, ARCHIVE_DIRS.locks);
  if (!existsSync(locks)) return [];
  const out: ArchiveIndex[] = [];
  for (const name of (await readdir(locks)).sort()) {
    if (name.includes('.tmp-')) continue;
    out.push(await readIndex(join(locks, name)));
  }
  return out;
}

/** Total bytes and count of blobs, and the blobs no view links to (link count 1). */
export async function scanBlobs(archiveDir: string): Promise<{ bytes: number; files: number; unreferenced: { path: string; bytes: number }[] }> {
  const root = join(archiveDir, ARCHIVE_DIRS.blobs);
  let bytes = 0;
  let files = 0;
  const unreferenced: { path: string; bytes: number }[] = [];
  if (!existsSync(root)) return { bytes, files, unreferenced };
  for (const sub of await readdir(root)) {
    const subDir = join(root, sub);
    if (sub.startsWith('.in-')) {
      unreferenced.push({ path: subDir, bytes: (await stat(subDir)).size });
      continue;
    }
    for (const name of await readdir(subDir)) {
      const s = await stat(join(subDir, name));
      bytes += s.size;
      files += 1;
      if (s.nlink <= 1) unreferenced.push({ path: join(subDir, name), bytes: s.size });
    }
  }
  return { bytes, files, unreferenced };
}
