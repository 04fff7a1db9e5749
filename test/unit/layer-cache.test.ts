/**
 * The layer cache with real concurrent build processes: a finished layer is never deleted by
 * another build (the later one drops its own copy), a rebuild replaces it only once complete,
 * and a build killed mid-way leaves nothing a later build keeps.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isLayerComplete } from '../../images/layer-cache.ts';
import { withTempDir } from '../helpers.ts';

interface Child {
  proc: ChildProcess;
  out: string;
  started: Promise<void>;
  exited: Promise<number | null>;
}

function startBuild(layerDir: string, who: string, goFile: string, rebuild = false): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/layer-build-child.ts', layerDir, who, goFile, rebuild ? 'rebuild' : ''], { stdio: ['ignore', 'pipe', 'inherit'] });
  const child: Child = { proc, out: '', started: undefined!, exited: new Promise((r) => proc.once('exit', (code) => r(code))) };
  child.started = new Promise((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      child.out += d.toString();
      if (child.out.includes('building')) resolve();
    });
    proc.once('exit', () => reject(new Error(`build ${who} exited before building: ${child.out}`)));
  });
  child.started.catch(() => undefined);
  return child;
}

const result = (c: Child) => JSON.parse(c.out.trim().split('\n').pop()!) as { cached: boolean };

test('two real builds of one layer at once: the first to finish is kept, the later drops only its own copy', async (t) => {
  await withTempDir(async (dir) => {
    const layerDir = join(dir, 'tools-small');
    const a = startBuild(layerDir, 'a', join(dir, 'go-a'));
    const b = startBuild(layerDir, 'b', join(dir, 'go-b'));
    await Promise.all([a.started, b.started]);
    await writeFile(join(dir, 'go-a'), '');
    t.is(await a.exited, 0);
    const kept = await stat(layerDir);
    await writeFile(join(dir, 'go-b'), '');
    t.is(await b.exited, 0);
    t.false(result(a).cached);
    t.true(result(b).cached, 'the later build saw the finished layer');
    t.is((await stat(layerDir)).ino, kept.ino, 'the finished layer is the same directory');
    t.is(await readFile(join(layerDir, 'who'), 'utf8'), 'a');
    t.deepEqual(await readdir(dir), ['go-a', 'go-b', 'tools-small']);
  });
});

test('a build killed mid-way leaves no layer, and the next build removes its leftovers; a rebuild replaces the layer only once complete', async (t) => {
  await withTempDir(async (dir) => {
    const layerDir = join(dir, 'tools-small');
    const killed = startBuild(layerDir, 'killed', join(dir, 'never'));
    await killed.started;
    killed.proc.kill('SIGKILL');
    await killed.exited;
    t.false(isLayerComplete({ dir: layerDir }));
    t.true((await readdir(dir)).some((n) => n.startsWith('tools-small.tmp-')), 'the killed build left its private directory');

    const next = startBuild(layerDir, 'next', join(dir, 'go'));
    await next.started;
    t.false((await readdir(dir)).some((n) => n.startsWith(`tools-small.tmp-${killed.proc.pid}-`)), "the dead build's directory is gone");
    await writeFile(join(dir, 'go'), '');
    t.is(await next.exited, 0);

    const rebuild = startBuild(layerDir, 'rebuilt', join(dir, 'go-rebuild'), true);
    await rebuild.started;
    t.is(await readFile(join(layerDir, 'who'), 'utf8'), 'next', 'while the rebuild runs, the finished layer stays usable');
    await writeFile(join(dir, 'go-rebuild'), '');
    t.is(await rebuild.exited, 0);
    t.is(await readFile(join(layerDir, 'who'), 'utf8'), 'rebuilt');
    t.deepEqual((await readdir(dir)).filter((n) => n.includes('.tmp-')), []);
    t.false(existsSync(join(dir, 'never')));
  });
});
