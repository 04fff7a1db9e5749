/**
 * Writes every input of a build into the archive: per suite the InRelease the lock names (its
 * signature checked) and the Packages indexes it lists, every installed .deb at its pool path
 * (each verified against its index), the Kubernetes inputs the build resolved, the lock and
 * the index. Unchanged files are shared with the builds archived before.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { downloadFile, fetchBytes, UnreachableError } from '../../core/download.ts';
import { LabError } from '../../core/errors.ts';
import { sha256 } from '../../core/hash.ts';
import { renderImageLock, type ImageLock } from '../lock/lock.ts';
import { inReleaseUrl } from '../mirror.ts';
import type { InstalledPackage } from '../manifest.ts';
import type { AptSource } from '../recipe.ts';
import { ARTIFACT_DIRS, artifactFileName, imageArchiveName, type ResolvedInputs } from '../artifacts/store.ts';
import { ARCHIVED_INDEXES, blobPath, distsPath, lockDate, lockId, mirrorDir, parseReleaseSha256, planPoolFiles, releaseEntry, type ArchivedFile, type ArchiveIndex } from './layout.ts';
import { blobExists, initArchive, listViews, scanBlobs, storeBlob, storeCopy, tmpBlobPath, writeView, type BlobStore } from './store.ts';
import { ArchiveInputError, DEBIAN_ARCHIVE_KEYRING, readPackagesIndex, verifyInRelease } from './verify.ts';

export interface ArchiveBuildInput {
  out: string;
  lock: ImageLock;
  sources: AptSource[];
  /** Every package installed in the tools, OS and (when built) Kubernetes layers. */
  installed: InstalledPackage[];
  /** The Kubernetes inputs the build resolved (absent for an OS-only build). */
  kubernetes?: ResolvedInputs;
  image?: ArchiveIndex['image'];
  keyring?: string;
  signal?: AbortSignal;
  onItem?: (what: string) => void;
}

export interface ArchiveResult {
  view: string;
  lockId: string;
  files: number;
  /** What this build added to the archive (new blobs). */
  addedBytes: number;
  addedFiles: number;
  /** The whole archive after it. */
  totalBytes: number;
  locks: number;
}

async function fetchToBlob(store: BlobStore, url: string, expected: string, what: string, entry: string, signal?: AbortSignal): Promise<void> {
  if (blobExists(store, expected)) return;
  const tmp = tmpBlobPath(store);
  try {
    await downloadFile(url, tmp, { sha256: expected, signal });
  } catch (error) {
    if (error instanceof UnreachableError) throw new ArchiveInputError(url, entry, `${what} cannot be fetched: ${error.reason}`, 'the mirror dropped it since the lock: archive right after building (the nightly does), or take it from debian.snapshot');
    throw error;
  }
  await storeBlob(store, tmp, expected);
}

export async function archiveBuild(input: ArchiveBuildInput): Promise<ArchiveResult> {
  const { out, lock, sources, signal } = input;
  const keyring = input.keyring ?? DEBIAN_ARCHIVE_KEYRING;
  await initArchive(out);
  const store: BlobStore = { dir: out, addedBytes: 0, addedFiles: 0 };
  const files: ArchivedFile[] = [];
  const indexes: { source: AptSource; packages: Awaited<ReturnType<typeof readPackagesIndex>> }[] = [];

  for (const source of sources) {
    const entry = releaseEntry(source.suite);
    const locked = lock.debian.releases[source.suite];
    if (!locked) throw new LabError(`the lock has no ${entry}`, 'run `npm run image:lock`');
    const url = inReleaseUrl(source);
    input.onItem?.(`${source.suite}: InRelease`);
    let bytes: Buffer;
    try {
      bytes = await fetchBytes(url, { signal });
    } catch (error) {
      if (error instanceof UnreachableError) throw new ArchiveInputError(url, entry, `cannot be read: ${error.reason}`, 'archive where the mirror is reachable');
      throw error;
    }
    if (sha256(bytes) !== locked.sha256) {
      throw new ArchiveInputError(url, entry, `the mirror now serves another InRelease (sha256 ${sha256(bytes).slice(0, 12)}, the lock names ${locked.sha256.slice(0, 12)} of ${locked.date})`, 'the mirror moved since the lock: the exact inputs of this lock can no longer be archived from it; archive right after building, or relock and build again');
    }
    const release = await verifyInRelease(bytes, keyring, url, entry);
    const tmp = tmpBlobPath(store);
    await writeFile(tmp, bytes);
    await storeBlob(store, tmp, locked.sha256);
    files.push({ entry, what: 'InRelease', path: distsPath(source, 'InRelease'), sha256: locked.sha256, bytes: bytes.length });

    const listed = parseReleaseSha256(release);
    for (const name of ARCHIVED_INDEXES) {
      const want = listed.get(name);
      if (!want) continue;
      await fetchToBlob(store, `${source.uri.replace(/\/$/, '')}/dists/${source.suite}/${name}`, want.sha256, name, entry, signal);
      files.push({ entry, what: name, path: distsPath(source, name), sha256: want.sha256, bytes: want.bytes });
      if (name.includes('/Packages') && !indexes.some((i) => i.source === source)) {
        indexes.push({ source, packages: await readPackagesIndex(join(out, blobPath(want.sha256)), name) });
      }
    }
    if (!indexes.some((i) => i.source === source)) throw new ArchiveInputError(url, entry, 'lists no main/binary-amd64 Packages index', 'is this a Debian mirror?');
  }

  const { found, missing } = planPoolFiles(input.installed, indexes);
  if (missing.length) {
    throw new LabError(`installed packages not in the locked indexes:\n${missing.map((m) => `  - ${m}`).join('\n')}`, 'the build and the lock disagree: build again with this lock, then archive');
  }
  input.onItem?.(`${found.length} packages`);
  for (const { source, stanza } of found) {
    const entry = `${releaseEntry(source.suite)}: package ${stanza.name} ${stanza.version}`;
    await fetchToBlob(store, `${source.uri.replace(/\/$/, '')}/${stanza.filename}`, stanza.sha256, `package ${stanza.name} ${stanza.version}`, entry, signal);
    files.push({ entry, what: `package ${stanza.name} ${stanza.version}`, path: `${mirrorDir(source.uri)}/${stanza.filename}`, sha256: stanza.sha256, bytes: stanza.bytes });
  }

  if (input.kubernetes) files.push(...(await archiveKubernetesInputs(store, lock, input.kubernetes)));

  const id = lockId(lock);
  const index: ArchiveIndex = { lockId: id, lockDate: lockDate(lock), archivedAt: new Date().toISOString(), image: input.image, files };
  const view = await writeView(out, index, renderImageLock(lock), files);
  const scan = await scanBlobs(out);
  return { view, lockId: id, files: files.length, addedBytes: store.addedBytes, addedFiles: store.addedFiles, totalBytes: scan.bytes, locks: (await listViews(out)).length };
}

/** The Kubernetes key, packages, manifests and image archives, at the paths `--artifacts DIR` reads. */
async function archiveKubernetesInputs(store: BlobStore, lock: ImageLock, resolved: ResolvedInputs): Promise<ArchivedFile[]> {
  const files: ArchivedFile[] = [];
  const add = async (entry: string, what: string, file: string, path: string) => {
    if (!existsSync(file)) throw new LabError(`${what}: ${file} is missing`, 'build again, then archive');
    const { sha256: digest, bytes } = await storeCopy(store, file);
    files.push({ entry, what, path, sha256: digest, bytes });
  };
  await add('kubernetes.keyring', 'the Kubernetes apt key', resolved.keyring, `${ARTIFACT_DIRS.files}/${artifactFileName(lock.kubernetes.keyring.url)}`);
  for (const [key, file] of Object.entries(resolved.debs)) {
    const { entry, url } = lockedDebEntry(lock, key);
    await add(entry, `package ${key}`, file, `${ARTIFACT_DIRS.files}/${artifactFileName(url)}`);
  }
  for (const [name, file] of Object.entries(resolved.manifests)) await add(`manifests.${name}`, `manifest ${name}`, file, `${ARTIFACT_DIRS.files}/${artifactFileName(lock.manifests[name]!.url)}`);
  // A staged upgrade's images (`target/<ref>`) sit beside the image's own, by reference, where `--artifacts` looks for them.
  for (const [key, file] of Object.entries(resolved.images)) {
    const ref = key.startsWith('target/') ? key.slice('target/'.length) : key;
    await add(key === ref ? `images.${ref}` : `target.images.${ref}`, `image ${ref}`, file, `${ARTIFACT_DIRS.images}/${imageArchiveName(ref)}`);
  }
  return files;
}

/** The lock entry of a resolved .deb: a Kubernetes package, the pinned containerd 2, or a staged target package (`target/<name>`). */
export function lockedDebEntry(lock: ImageLock, key: string): { entry: string; url: string } {
  if (key.startsWith('target/')) {
    const name = key.slice('target/'.length);
    const pkg = lock.target?.kubernetes.packages[name];
    if (pkg) return { entry: `target.kubernetes.packages.${name}`, url: pkg.url };
    if (lock.target?.containerd?.name === name) return { entry: 'target.containerd', url: lock.target.containerd.url };
  } else if (lock.kubernetes.packages[key]) return { entry: `kubernetes.packages.${key}`, url: lock.kubernetes.packages[key]!.url };
  else if (lock.containerd?.name === key) return { entry: 'containerd', url: lock.containerd.url };
  throw new LabError(`the build resolved package ${key}, which the lock does not list`, 'archive a build of this lock (image:archive builds it first)');
}
