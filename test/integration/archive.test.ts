/**
 * The input archive's acceptance: build the OS-only image at today's mirror (the shared cache
 * usually has it), archive it, then rebuild it from the archive alone inside a network
 * namespace with no route and an empty layer cache: the disk's sha256 equals the one the first
 * build recorded. A lock the archive does not hold is refused there before any layer is cached.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../core/exec.ts';
import { sha256File } from '../../core/hash.ts';
import { IMAGE_FILES } from '../../core/paths.ts';
import { Progress } from '../../core/progress.ts';
import { archiveImage } from '../../images/archive/archive-image.ts';
import { parseSha256Sums } from '../../images/manifest.ts';
import { osOnlySourceAtMirrorHead } from '../../images/source.ts';
import { missingCommand, notRoot, testUnless, throwawayLabConfig, withTempDir } from '../helpers.ts';

const reason = notRoot() ?? missingCommand('mmdebstrap', 'ip', 'gpgv');
const REPO = join(import.meta.dirname, '../..');

async function inNetns<T>(name: string, fn: (exec: (cmd: string[], env?: Record<string, string>) => ReturnType<typeof run>) => Promise<T>): Promise<T> {
  await run('ip', ['netns', 'del', name], { allowFailure: true });
  await run('ip', ['netns', 'add', name]);
  try {
    await run('ip', ['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
    return await fn((cmd, env = {}) => run('ip', ['netns', 'exec', name, 'env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...cmd], { cwd: REPO, allowFailure: true, timeoutMs: 60 * 60_000 }));
  } finally {
    await run('ip', ['netns', 'del', name], { allowFailure: true });
  }
}

testUnless(reason, 'an archived build rebuilds bit-identically with no network and an empty layer cache', async (t) => {
  t.timeout(75 * 60_000);
  await withTempDir(async (dir) => {
    const config = await throwawayLabConfig('it-archive', dir);
    const source = await osOnlySourceAtMirrorHead(config);
    const out = join(dir, 'archive');
    const { image, result } = await archiveImage({ debian: config.debian, source, progress: new Progress('plain', () => undefined), out });
    const recorded = parseSha256Sums(await readFile(join(image.dir, IMAGE_FILES.sums), 'utf8'))[IMAGE_FILES.disk];
    t.truthy(recorded);
    t.true(result.files > 100, `${result.files} archived files`);
    const lockFile = join(result.view, 'image.lock.json');

    await inNetns('labsmith-archive-it', async (exec) => {
      const routes = await exec(['ip', '-4', 'route', 'show']);
      t.is(routes.stdout.trim(), '', 'the namespace has no route');
      const probe = await exec(['node', '-e', "fetch('http://deb.debian.org/debian/').then(()=>process.exit(0),()=>process.exit(7))"]);
      t.is(probe.exitCode, 7, 'the mirror is unreachable from the namespace');

      // A lock the archive does not hold: refused before any layer, nothing cached.
      const otherCache = join(dir, 'other-cache');
      const other = structuredClone(source.lock);
      other.debian.releases[config.debian.suite]!.sha256 = 'e'.repeat(64);
      const { writeImageLock } = await import('../../images/lock/lock.ts');
      await writeImageLock(join(dir, 'other.lock.json'), other);
      const refused = await exec(['npx', 'tsx', 'scripts/image-build.ts', '--os-only', '--artifacts', out, '--lock', join(dir, 'other.lock.json')], { LABSMITH_CACHE_DIR: otherCache });
      t.not(refused.exitCode, 0);
      t.regex(refused.stderr + refused.stdout, /has no inputs for this lock/);
      t.deepEqual(existsSync(join(otherCache, 'layers')) ? await readdir(join(otherCache, 'layers')) : [], []);

      const cache = join(dir, 'offline-cache');
      const started = Date.now();
      const rebuilt = await exec(['npx', 'tsx', 'scripts/image-build.ts', '--os-only', '--artifacts', out, '--lock', lockFile], { LABSMITH_CACHE_DIR: cache });
      t.is(rebuilt.exitCode, 0, rebuilt.stderr.slice(-4000));
      t.log(`offline rebuild from the archive: ${Math.round((Date.now() - started) / 1000)} s`);
      const disks = (await readdir(join(cache, 'layers'))).filter((d) => d.startsWith('disk-') && !d.includes('.tmp-'));
      t.deepEqual(disks, [`disk-${image.plan.disk.hash.slice(0, 16)}`], 'the same disk layer, by its inputs');
      t.is(await sha256File(join(cache, 'layers', disks[0]!, IMAGE_FILES.disk)), recorded!, 'bit-identical disk image');
    });
  });
});
