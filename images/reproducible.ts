/**
 * `image:build --verify-reproducible`: two builds from scratch in separate caches, then a
 * comparison from the whole disk down to partitions and root filesystem members.
 */
import { join } from 'node:path';
import { sha256File } from '../core/hash.ts';
import { cacheRoot, IMAGE_FILES } from '../core/paths.ts';
import { removeTree } from '../core/remove-tree.ts';
import type { Progress } from '../core/progress.ts';
import { readTar, type TarEntry } from '../core/tar.ts';
import { buildImage, type BuiltImage, type DebianSettings } from './build.ts';
import { bootLayer } from './recipe.ts';
import type { ImageSource } from './source.ts';

export interface Comparison {
  what: string;
  a: string;
  b: string;
}

export interface ReproducibilityReport {
  identical: boolean;
  comparisons: Comparison[];
  /** Root filesystem members that differ (path and how). */
  differingMembers: string[];
}

export async function verifyReproducible(opts: { debian: DebianSettings; source: ImageSource; progress: Progress; signal?: AbortSignal }): Promise<ReproducibilityReport> {
  const base = join(cacheRoot(), `verify-${process.pid}`);
  try {
    opts.progress.info('build 1 of 2 (from scratch)');
    const a = await buildImage({ ...opts, cacheDir: join(base, 'a') });
    opts.progress.info('build 2 of 2 (from scratch, same mirror state and SOURCE_DATE_EPOCH)');
    const b = await buildImage({ ...opts, debian: { ...opts.debian, sourceDateEpoch: a.plan.sourceDateEpoch }, cacheDir: join(base, 'b') });
    const tarA = join(bootLayer(a.plan).dir, IMAGE_FILES.rootfsTar);
    const tarB = join(bootLayer(b.plan).dir, IMAGE_FILES.rootfsTar);
    const comparisons = [...compareImages(a, b), { what: 'rootfs.tar', a: await sha256File(tarA), b: await sha256File(tarB) }];
    let differingMembers: string[] = [];
    const rootfs = comparisons.find((c) => c.what === 'rootfs.tar');
    if (rootfs && rootfs.a !== rootfs.b) {
      const [ea, eb] = await Promise.all([
        readTar(tarA, { hashContents: true }),
        readTar(tarB, { hashContents: true }),
      ]);
      differingMembers = diffTarEntries(ea, eb);
    }
    return { identical: comparisons.every((c) => c.a === c.b), comparisons, differingMembers };
  } finally {
    await removeTree(base);
  }
}

export function compareImages(a: BuiltImage, b: BuiltImage): Comparison[] {
  const out: Comparison[] = [{ what: 'inputs hash', a: a.plan.disk.hash, b: b.plan.disk.hash }];
  for (const name of [IMAGE_FILES.disk, IMAGE_FILES.compressed]) {
    out.push({ what: name, a: a.manifest.files[name]?.sha256 ?? '', b: b.manifest.files[name]?.sha256 ?? '' });
  }
  if (a.built && b.built) {
    out.push({ what: 'raw disk', a: a.built.hashes.raw, b: b.built.hashes.raw });
    out.push({ what: 'partition 1 (ESP, FAT)', a: a.built.hashes.esp, b: b.built.hashes.esp });
    out.push({ what: 'partition 2 (root, ext4)', a: a.built.hashes.root, b: b.built.hashes.root });
  }
  return out;
}

/** Members that are missing on one side or differ in content, mode, owner, time or link target (pure). */
export function diffTarEntries(a: TarEntry[], b: TarEntry[], limit = 50): string[] {
  const bm = new Map(b.map((e) => [e.path, e]));
  const out: string[] = [];
  const seen = new Set<string>();
  for (const ea of a) {
    seen.add(ea.path);
    const eb = bm.get(ea.path);
    const why = !eb
      ? 'only in build 1'
      : ea.sha256 !== eb.sha256
        ? 'contents differ'
        : ea.mode !== eb.mode
          ? 'mode differs'
          : ea.uid !== eb.uid || ea.gid !== eb.gid
            ? 'owner differs'
            : ea.mtime !== eb.mtime
              ? `mtime ${ea.mtime} vs ${eb.mtime}`
              : ea.linkTarget !== eb.linkTarget
                ? 'link target differs'
                : undefined;
    if (why) out.push(`/${ea.path}: ${why}`);
  }
  for (const eb of b) if (!seen.has(eb.path)) out.push(`/${eb.path}: only in build 2`);
  return out.length > limit ? [...out.slice(0, limit), `… and ${out.length - limit} more`] : out;
}

export function renderReproducibilityReport(report: ReproducibilityReport): string {
  const lines = [report.identical ? 'reproducible: both builds are bit-identical' : 'NOT reproducible: the builds differ', ''];
  for (const c of report.comparisons) lines.push(`  ${c.a === c.b ? 'same' : 'DIFF'}  ${c.what}  ${c.a.slice(0, 16)}${c.a === c.b ? '' : ` vs ${c.b.slice(0, 16)}`}`);
  if (report.differingMembers.length) lines.push('', 'root filesystem members that differ:', ...report.differingMembers.map((m) => `  ${m}`));
  return lines.join('\n') + '\n';
}
