/** `image:archive`: build (or reuse) the image, then archive every input it used; and `--prune`. */
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { LabError } from '../../core/errors.ts';
import { IMAGE_FILES } from '../../core/paths.ts';
import { formatSize } from '../../core/units.ts';
import { buildImage, type BuildImageOptions, type BuiltImage } from '../build.ts';
import { parseDpkgStatus, type InstalledPackage } from '../manifest.ts';
import { aptSources } from '../recipe.ts';
import { removeTree } from '../../core/remove-tree.ts';
import { ARCHIVE_DIRS } from './layout.ts';
import { archiveBuild, type ArchiveResult } from './collect.ts';
import { isArchive, listViews, scanBlobs } from './store.ts';

/** Every package of the tools layer (its chroot's dpkg status) and of the boot layer (the manifest). */
export async function installedPackages(image: BuiltImage): Promise<InstalledPackage[]> {
  const statusFile = join(image.plan.tools.dir, 'root', 'var/lib/dpkg/status');
  let tools: InstalledPackage[];
  try {
    tools = parseDpkgStatus(await readFile(statusFile, 'utf8'));
  } catch {
    throw new LabError(`${statusFile} is missing: the tools layer's package list is needed for the archive`, 'build again with `npm run image:build -- --rebuild`, then archive');
  }
  return [...tools, ...image.manifest.packages];
}

export async function archiveImage(opts: BuildImageOptions & { out: string }): Promise<{ image: BuiltImage; result: ArchiveResult }> {
  if (opts.source.artifactsDir && opts.source.artifactsDir === opts.out) throw new LabError('--out is the --artifacts directory the build reads', 'name another directory, or drop --artifacts');
  const image = await buildImage(opts);
  opts.progress.start('Archiving the build\'s inputs');
  try {
    const result = await archiveBuild({
      out: opts.out,
      lock: opts.source.lock,
      sources: aptSources(opts.debian),
      installed: await installedPackages(image),
      kubernetes: image.resolved,
      image: { inputsHash: image.manifest.inputsHash, kubernetes: Boolean(image.manifest.kubernetes), files: Object.fromEntries(Object.entries(image.manifest.files).map(([n, f]) => [n, f.sha256])) },
      signal: opts.signal,
      onItem: (w) => opts.progress.info(w),
    });
    opts.progress.end(true);
    return { image, result };
  } catch (error) {
    opts.progress.end(false);
    throw error;
  }
}

export function renderArchiveSummary(r: ArchiveResult, image?: BuiltImage): string {
  return [
    `archived lock ${r.lockId}: ${r.files} files in ${r.view}`,
    `  this build added ${formatSize(r.addedBytes)} (${r.addedFiles} new files); the archive holds ${r.locks} lock(s) in ${formatSize(r.totalBytes)}`,
    ...(image ? [`  its image: ${image.manifest.files[IMAGE_FILES.disk]?.sha256 ?? '?'}  ${IMAGE_FILES.disk}`] : []),
    `  rebuild offline: npm run image:build -- --artifacts ${r.view.replace(/\/locks\/[^/]+$/, '')} --lock ${join(r.view, 'image.lock.json')}`,
    '',
  ].join('\n');
}

export interface PruneResult {
  kept: string[];
  removed: string[];
  freedBytes: number;
  totalBytes: number;
}

/** Keeps the views of the newest `keep` locks (by lock date, then archive time) and removes every blob nothing links to. */
export async function pruneArchive(dir: string, keep: number): Promise<PruneResult> {
  if (!isArchive(dir)) throw new LabError(`${dir} is not an input archive`, 'name a directory written by `npm run image:archive -- --out DIR`', 2);
  if (!Number.isInteger(keep) || keep < 1) throw new LabError(`--keep ${keep}: keep at least one lock`, 'e.g. --prune --keep 7', 2);
  const views = (await listViews(dir)).sort((a, b) => (a.lockDate === b.lockDate ? b.archivedAt.localeCompare(a.archivedAt) : b.lockDate.localeCompare(a.lockDate)));
  const removed = views.slice(keep).map((v) => v.lockId);
  for (const id of removed) await removeTree(join(dir, ARCHIVE_DIRS.locks, id));
  const { unreferenced } = await scanBlobs(dir);
  let freedBytes = 0;
  for (const blob of unreferenced) {
    await rm(blob.path, { force: true });
    freedBytes += blob.bytes;
  }
  return { kept: views.slice(0, keep).map((v) => v.lockId), removed, freedBytes, totalBytes: (await scanBlobs(dir)).bytes };
}

export function renderPruneSummary(p: PruneResult): string {
  return `kept ${p.kept.length} lock(s) (${p.kept.join(', ') || 'none'}), removed ${p.removed.length} (${p.removed.join(', ') || 'none'}); freed ${formatSize(p.freedBytes)}, the archive holds ${formatSize(p.totalBytes)}\n`;
}
