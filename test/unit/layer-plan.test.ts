/**
 * The planned mmdebstrap run is what executes: the runner writes the planned files, places the
 * locked inputs and runs exactly the planned argv (seen through the exec seam); the in-build
 * mirror check (a real shell file) fails the build when apt's InRelease is not the planned one.
 */
import test from 'ava';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LabError } from '../../core/errors.ts';
import { run, type RunOptions } from '../../core/exec.ts';
import { sha256 } from '../../core/hash.ts';
import { bindBuildDir, BUILD_DIR, runPlannedMmdebstrap } from '../../images/mmdebstrap.ts';
import { aptListFileName } from '../../images/mirror-check.ts';
import { planImageBuild, type ImageInputs } from '../../images/recipe.ts';
import { missingCommand, testUnless, withTempDir } from '../helpers.ts';

const IN_RELEASE = { trixie: 'Origin: Debian\nSuite: stable\nDate: Sat, 21 Nov 2026 09:15:44 UTC\n' };
const inputs: ImageInputs = {
  suite: 'trixie',
  mirror: 'http://deb.debian.org/debian',
  securityMirror: 'http://deb.debian.org/debian-security',
  architecture: 'amd64',
  releaseHashes: { trixie: sha256(IN_RELEASE.trixie), 'trixie-updates': 'b'.repeat(64), 'trixie-security': 'c'.repeat(64) },
  releaseDates: { trixie: 1763716544, 'trixie-updates': 1764000000, 'trixie-security': 1764000000 },
  sourceDateEpoch: 1764000000,
};

test('apt list file names follow apt (scheme dropped, "/" as "_", "_" and "~" quoted)', (t) => {
  t.is(aptListFileName({ uri: 'http://deb.debian.org/debian/', suite: 'trixie-security', components: ['main'] }), 'deb.debian.org_debian_dists_trixie-security_InRelease');
  t.is(aptListFileName({ uri: 'http://127.0.0.1:8080/my_mirror~x', suite: 'trixie', components: ['main'] }), '127.0.0.1:8080_my%5fmirror%7ex_dists_trixie_InRelease');
});

interface Recorded {
  cmd: string;
  args: readonly string[];
  env?: RunOptions['env'];
  files: string[];
}

/**
 * Stands in for mmdebstrap at the exec seam only to record what it was given; it runs the planned
 * essential hook (the real script) on a prepared root the way mmdebstrap does, so the log lines
 * and exit status are the hook's own.
 */
function recorder(root: string, seen: Recorded[]) {
  return async (cmd: string, args: readonly string[], options: RunOptions = {}) => {
    const files = (await readdir(join(options.logFile!, '..', 'hooks'), { recursive: true })).map(String).sort();
    seen.push({ cmd, args, env: options.env, files });
    const hook = args.find((a) => a.startsWith('--essential-hook='))!.slice('--essential-hook='.length);
    return run(hook, [root], { logFile: options.logFile });
  };
}

async function preparedRoot(dir: string, inRelease: string): Promise<string> {
  const root = join(dir, 'root');
  await mkdir(join(root, 'var/lib/apt/lists'), { recursive: true });
  await writeFile(join(root, 'var/lib/apt/lists', 'deb.debian.org_debian_dists_trixie_InRelease'), inRelease);
  return root;
}

testUnless(missingCommand('sha256sum'), 'the runner executes the planned argv and environment, with every planned file in place, and cleans its scratch', async (t) => {
  await withTempDir(async (dir) => {
    const plan = planImageBuild(inputs, join(dir, 'layers'));
    const build = join(dir, 'build');
    await mkdir(build);
    const seen: Recorded[] = [];
    await runPlannedMmdebstrap(plan.tools.mmdebstrap!, build, { debs: {}, images: {} }, { exec: recorder(await preparedRoot(dir, IN_RELEASE.trixie), seen) });
    t.is(seen.length, 1);
    t.is(seen[0]!.cmd, 'mmdebstrap');
    t.deepEqual(seen[0]!.args, bindBuildDir(plan.tools.mmdebstrap!.argv, build), 'the executed argv is the planned one, with the build directory bound');
    t.false(seen[0]!.args.some((a) => a.includes(BUILD_DIR)));
    t.deepEqual(seen[0]!.env, plan.tools.mmdebstrap!.env);
    t.deepEqual(seen[0]!.files, ['check-mirror-state.sh', 'mirror-state']);
    t.deepEqual(await readdir(build), ['build.log'], 'the hooks are scratch: only the output stays');
  });
});

testUnless(missingCommand('sha256sum'), 'a mirror that moved between planning and download fails the build naming the suite', async (t) => {
  await withTempDir(async (dir) => {
    const plan = planImageBuild(inputs, join(dir, 'layers'));
    const build = join(dir, 'build');
    await mkdir(build);
    const moved = IN_RELEASE.trixie.replace('09:15:44', '21:00:00');
    const error = await t.throwsAsync(runPlannedMmdebstrap(plan.tools.mmdebstrap!, build, { debs: {}, images: {} }, { exec: recorder(await preparedRoot(dir, moved), []) }));
    t.true(error instanceof LabError, error?.message);
    t.regex(error!.message, /^the Debian mirror moved during the build \(nothing was cached\):\n {2}- trixie InRelease is [0-9a-f]{64}, the plan has [0-9a-f]{64}/);
    t.regex(error!.message, new RegExp(sha256(moved)));
    t.regex((error as LabError).hint!, /image:lock/);
    t.regex(await readFile(join(build, 'build.log'), 'utf8'), /the Debian mirror moved during the build: trixie/);
  });
});

testUnless(missingCommand('shellcheck'), 'the mirror check hook is shellcheck clean', async (t) => {
  const r = await run('shellcheck', ['images/hooks/check-mirror-state.sh'], { allowFailure: true });
  t.is(r.exitCode, 0, r.stdout);
});
