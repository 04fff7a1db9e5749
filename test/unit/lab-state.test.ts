/**
 * The lab directory and its state: versioned state, an atomic lock, a directory that is 0700
 * from its first mkdir and that fails at once, naming the path, when it cannot be written
 * (real read-only mounts, a real unprivileged user, real processes racing for the lock).
 */
import test from 'ava';
import { execa } from 'execa';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LabError } from '../../core/errors.ts';
import { ensureWritableDir } from '../../core/fs.ts';
import { run } from '../../core/exec.ts';
import { LAB_FILES } from '../../core/paths.ts';
import { LAB_STATE_VERSION, readLabState, writeLabState, type LabState } from '../../lab/state.ts';
import { notRoot, testUnless, withTempDir } from '../helpers.ts';

const TSX = join(process.cwd(), 'node_modules', '.bin', 'tsx');

const v1: LabState = { name: 'old', driver: 'libvirt', accel: 'tcg', startedAt: '2026-01-01T00:00:00Z', hostAddress: '127.0.0.1', forwards: [], sshUser: 'debian', imageDir: '/i', libvirtUri: 'qemu:///system' };

test('state written before versions existed reads as a complete lab of the current version, in its own directory', async (t) => {
  await withTempDir(async (dir) => {
    await writeFile(join(dir, LAB_FILES.state), JSON.stringify(v1));
    const state = await readLabState(dir);
    t.is(state?.version, LAB_STATE_VERSION);
    t.is(state?.stateDir, dir);
    t.is(state?.complete, true);
    t.is(state?.driver, 'libvirt');
  });
});

test('state from a newer labsmith is refused with what to do, not misread', async (t) => {
  await withTempDir(async (dir) => {
    await writeFile(join(dir, LAB_FILES.state), JSON.stringify({ ...v1, version: LAB_STATE_VERSION + 1 }));
    const error = await t.throwsAsync(readLabState(dir));
    t.regex(error!.message, /written by a newer labsmith \(state version 3/);
  });
});

test('written state is owner-only and records its version and directory', async (t) => {
  await withTempDir(async (dir) => {
    await writeLabState(dir, v1);
    t.is((await stat(join(dir, LAB_FILES.state))).mode & 0o777, 0o600);
    const raw = JSON.parse(await readFile(join(dir, LAB_FILES.state), 'utf8')) as LabState;
    t.is(raw.version, LAB_STATE_VERSION);
    t.is(raw.stateDir, dir);
  });
});

test('a lab directory is 0700 from its first mkdir, parents included', async (t) => {
  await withTempDir(async (dir) => {
    const lab = join(dir, 'labs', 'web');
    await ensureWritableDir(lab, 'the lab directory', { mode: 0o700 });
    t.is((await stat(lab)).mode & 0o777, 0o700);
    t.is((await stat(join(dir, 'labs'))).mode & 0o777, 0o700);
  });
});

testUnless(notRoot(), 'a read-only file system is named as such, with the path (a real read-only bind mount)', async (t) => {
  await withTempDir(async (dir) => {
    const mnt = join(dir, 'ro');
    await mkdir(join(dir, 'src', 'exists'), { recursive: true });
    await mkdir(mnt);
    await run('mount', ['--bind', join(dir, 'src'), mnt]);
    try {
      await run('mount', ['-o', 'remount,bind,ro', mnt]);
      // Node's recursive mkdir says ENOENT here; the user needs EROFS and where.
      const created = await t.throwsAsync(ensureWritableDir(join(mnt, 'labs', 'web'), 'the lab directory for "web"'));
      t.true(created instanceof LabError);
      t.regex(created!.message, new RegExp(`cannot write the lab directory for "web" at ${mnt}/labs/web \\(creating ${mnt}/labs\\): EROFS \\(read-only file system\\)`));
      const existing = await t.throwsAsync(ensureWritableDir(join(mnt, 'exists'), 'the image cache'));
      t.regex(existing!.message, new RegExp(`at ${mnt}/exists: EROFS`));
    } finally {
      await run('umount', [mnt]);
    }
  });
});

testUnless(notRoot(), 'lab:up and lab:down as an unprivileged user on an inaccessible directory end at once, naming the path', async (t) => {
  await withTempDir(async (dir) => {
    const { chmod } = await import('node:fs/promises');
    await chmod(dir, 0o755);
    const locked = join(dir, 'locked');
    await mkdir(locked, { mode: 0o500 });
    await chmod(locked, 0o500);
    const yaml = join(dir, 'lab.yaml');
    await writeFile(yaml, `name: web\nstateDir: ${join(locked, 'web')}\nnetwork:\n  forwards:\n    http: { host: 48080 }\n    https: { host: 48443 }\n    ssh: { host: 42222 }\n`, { mode: 0o644 });
    const asNobody = (script: string) => execa('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', TSX, script, '--config', yaml, '--os-only'].filter((a) => script.includes('up') || a !== '--os-only'), { reject: false, env: { HOME: dir }, timeout: 120_000 });
    const up = await asNobody('scripts/lab-up.ts');
    t.is(up.exitCode, 1, up.stderr);
    t.regex(up.stderr, new RegExp(`cannot write the lab directory for "web" at ${locked}/web: EACCES \\(permission denied\\)`));
    const down = await asNobody('scripts/lab-down.ts');
    t.is(down.exitCode, 0, down.stderr);
    t.regex(down.stdout, /nothing left of it/);
  });
});

test('taking over a stale lock is atomic: of eight processes racing for it, exactly one gets it', async (t) => {
  t.timeout(180_000);
  await withTempDir(async (dir) => {
    await writeFile(join(dir, LAB_FILES.lock), '999999999'); // a dead holder
    const script = join(dir, 'take.mts');
    await writeFile(
      script,
      `import { acquireLabLock } from ${JSON.stringify(join(process.cwd(), 'lab', 'state.ts'))};\nimport { existsSync } from 'node:fs';\n` +
        `const at = Number(process.argv[2]);\n` +
        `await new Promise((r) => setTimeout(r, Math.max(0, at - Date.now())));\n` +
        // The winner holds the lock until every other process has answered (the test then writes "release").
        `try { await acquireLabLock(process.argv[3], 'race'); console.log('got'); while (!existsSync(process.argv[4])) await new Promise((r) => setTimeout(r, 100)); }\n` +
        `catch (e) { console.log('busy', e.message); }\n`,
    );
    const at = Date.now() + 15_000;
    const release = join(dir, 'release');
    let answered = 0;
    const results = await Promise.all(
      Array.from({ length: 8 }, () =>
        execa(TSX, [script, String(at), dir, release], { reject: false, timeout: 150_000 }).then((r) => {
          if (++answered === 7) void writeFile(release, '');
          return r;
        }),
      ),
    );
    const got = results.filter((r) => r.stdout.startsWith('got')).length;
    t.is(got, 1, results.map((r) => r.stdout || r.stderr).join('\n'));
    t.true(results.every((r) => /^(got|busy lab "race" is busy)/.test(r.stdout)), results.map((r) => r.stdout || r.stderr).join('\n'));
  });
});
