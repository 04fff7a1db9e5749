// npm run bench -- --archive [--archive-dir DIR]: the input archive's figures (called by scripts/bench.ts).
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../core/exec.ts';
import { cacheRoot } from '../core/paths.ts';
import type { Progress } from '../core/progress.ts';
import { formatSize } from '../core/units.ts';
import type { LabConfig } from '../config/lab-config.ts';
import { archiveImage } from '../images/archive/archive-image.ts';
import { planArchiveHistory } from '../images/archive/history.ts';
import { listViews } from '../images/archive/store.ts';
import { buildImage } from '../images/build.ts';
import { osOnlySourceAtMirrorHead } from '../images/source.ts';

const REPO = join(import.meta.dirname, '..');

export async function benchArchive(opts: { config: LabConfig; progress: Progress; signal: AbortSignal; archiveDir?: string; row: (what: string, value: string, note?: string) => void }): Promise<void> {
  const { config, progress, signal, row } = opts;
  const work = await mkdtemp(join(tmpdir(), 'labsmith-bench-archive-'));
  const ns = `labsmith-bench-${process.pid}`;
  try {
    const source = await osOnlySourceAtMirrorHead(config, signal);
    const out = opts.archiveDir ?? join(work, 'archive');
    const first = await archiveImage({ debian: config.debian, source, progress, signal, out, cacheDir: cacheRoot() });
    const again = await archiveImage({ debian: config.debian, source, progress, signal, out, cacheDir: cacheRoot() });

    // Offline: a child image:build in a network namespace with no route, from the archive, empty cache.
    await run('ip', ['netns', 'add', ns]);
    await run('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
    const offlineCache = join(work, 'offline-cache');
    const offlineStart = Date.now();
    await run('ip', ['netns', 'exec', ns, 'env', `LABSMITH_CACHE_DIR=${offlineCache}`, 'npx', 'tsx', 'scripts/image-build.ts', '--os-only', '--artifacts', out, '--lock', join(first.result.view, 'image.lock.json')], { cwd: REPO, signal, timeoutMs: 60 * 60_000 });
    const offlineSeconds = (Date.now() - offlineStart) / 1000;
    const disks = (await readdir(join(offlineCache, 'layers'))).filter((d) => d.startsWith('disk-'));
    const { sha256File } = await import('../core/hash.ts');
    const identical = (await sha256File(join(offlineCache, 'layers', disks[0]!, 'disk.qcow2'))) === first.image.manifest.files['disk.qcow2']?.sha256;
    await rm(offlineCache, { recursive: true, force: true });

    const onlineStart = Date.now();
    await buildImage({ debian: config.debian, source, progress, signal, cacheDir: join(work, 'online-cache') });
    const onlineSeconds = (Date.now() - onlineStart) / 1000;

    process.stdout.write('\nlabsmith input archive (this machine, OS-only image)\n');
    row('archive of one OS-only build', formatSize(first.result.totalBytes), `${first.result.files} files, ${first.result.locks} lock(s) in ${out}`);
    row('  added by that build', formatSize(first.result.addedBytes));
    row('  added by the same lock again', formatSize(again.result.addedBytes), 'expected 0');
    const history = planArchiveHistory(await listViews(out));
    if (history.length >= 2) {
      const [prev, last] = history.slice(-2) as [typeof history[number], typeof history[number]];
      row('  added by the newer lock', formatSize(last.addedBytes), `${last.lockDate} over ${prev.lockDate} (from the archive's own history)`);
    } else {
      row('  added by a one-day-newer lock', 'n/a', 'the archive holds one lock: run again with --archive-dir DIR on a kept archive the next day (the nightly one)');
    }
    row('offline rebuild from the archive', `${offlineSeconds.toFixed(1)} s`, `no route, empty cache; disk ${identical ? 'bit-identical' : 'DIFFERENT'}`);
    row('cold online build', `${onlineSeconds.toFixed(1)} s`, 'empty cache, live mirror');
  } finally {
    await run('ip', ['netns', 'del', ns], { allowFailure: true });
    await rm(work, { recursive: true, force: true });
  }
}
