/**
 * The containerd migration's pure parts (params golden, parsers of ctr/config output, the checks
 * and Docker's verdict) and its guest script on the host: shellcheck clean, and its verify-debs
 * step run for real against a small .deb built here (a fixture named like containerd 2) with
 * sha256sum and dpkg-deb: the right file passes, a changed byte or another version is refused.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { run } from '../../core/exec.ts';
import { sha256File } from '../../core/hash.ts';
import { REPO_ROOT } from '../../core/paths.ts';
import { renderContainerdConfig } from '../../cloud-init/containerd-config.ts';
import { renderContainerd2Config } from '../../lab/upgrade/containerd2-config.ts';
import {
  checkConfigDump, checkImagesKept, compareConfigKeys, judgeDocker, MIGRATE_SCRIPT_SOURCE, minorOf, parseCtrImages, parseDockerState, parseSections,
  readConfigKeys, renderDebSums, renderMigrationParams, type DebFacts, type DockerState,
} from '../../lab/upgrade/containerd-migration.ts';
import { parseDebControl } from '../../lab/upgrade/pinned-debs.ts';
import { STATIC_HELLO_OUTPUT, staticHelloElf } from '../fixtures/static-hello.ts';
import { missingCommand, testUnless, withTempDir } from '../helpers.ts';

const SCRIPT = join(REPO_ROOT, MIGRATE_SCRIPT_SOURCE);
const DIGEST = `sha256:${'a'.repeat(64)}`;
const containerd: DebFacts = { file: '/x/containerd_2.1.9+ds1-5_amd64.deb', package: 'containerd', version: '2.1.9+ds1-5', sha256: 'b'.repeat(64) };

test('the params file is shell-quoted assignments (golden)', (t) => {
  t.is(renderMigrationParams({ debs: [containerd], containerd, ctrRun: { image: 'registry.k8s.io/pause:3.10.1', command: ['/pause', '-v'] }, dockerImage: 'example.test/hello:1' }), `# Written by labsmith: values for migrate-containerd.sh
DEB_DIR=/var/lib/labsmith/upgrade/containerd/debs
DEB_SUMS=/var/lib/labsmith/upgrade/containerd/debs.sha256
PINS=containerd=2.1.9+ds1-5
CONTAINERD_PACKAGE=containerd
CONTAINERD_VERSION=2.1.9+ds1-5
APT_PREFERENCES_FILE=/etc/apt/preferences.d/labsmith-containerd
CONTAINERD_CONFIG=/etc/containerd/config.toml
NEW_CONFIG=/var/lib/labsmith/upgrade/containerd/config-v3.toml
MIGRATE_OUTPUT=/var/lib/labsmith/upgrade/containerd/config-migrate.toml
BACKUP_DIR=/var/lib/labsmith/upgrade/containerd/containerd-1.7
RESTART_TIMEOUT_SECONDS=120
DOCKER_SOCKET=/run/docker.sock
CTR_RUN_IMAGE=registry.k8s.io/pause:3.10.1
CTR_RUN_COMMAND='/pause -v'
DOCKER_RUN_IMAGE=example.test/hello:1
`);
  t.is(renderDebSums([containerd]), `${'b'.repeat(64)}  containerd_2.1.9+ds1-5_amd64.deb\n`);
  t.throws(() => renderMigrationParams({ debs: [containerd], containerd, ctrRun: { image: 'x', command: ['echo', 'a b'] } }), { message: /"a b" cannot be passed/ });
  t.throws(() => renderMigrationParams({ debs: [containerd], containerd, ctrRun: { image: 'x', command: ['$(reboot)'] } }), { message: /cannot be passed/ });
});

test('minorOf takes 1.38 and v1.38.0, and refuses what is not a version', (t) => {
  t.is(minorOf('1.38'), '1.38');
  t.is(minorOf('v1.38.0'), '1.38');
  t.throws(() => minorOf('latest'), { message: /not a Kubernetes version/ });
});

test('the script output splits into sections with exit statuses', (t) => {
  t.deepEqual(parseSections('noise\n@@a\nline 1\nline 2\n@@a.stderr\n@@a.exit\n0\n@@b\n\n@@b.stderr\nwarn\n@@b.exit\n1\n'), { a: 'line 1\nline 2', 'a.stderr': '', 'a.exit': '0', b: '', 'b.stderr': 'warn', 'b.exit': '1' });
  t.throws(() => readConfigKeys('level=warning msg="x"\nversion = 3'), { message: /not TOML/ });
});

test('ctr images ls rows: digest, labels and the pinned label (SIZE holds a space)', (t) => {
  const out = [
    'REF                                        TYPE                                       DIGEST    SIZE     PLATFORMS   LABELS',
    `registry.labsmith.invalid/tests/hello:1.0 application/vnd.oci.image.manifest.v1+json ${DIGEST} 1.2 KiB linux/amd64 io.cri-containerd.image=managed,io.cri-containerd.pinned=pinned`,
    `example.test/other:2 application/vnd.oci.image.manifest.v1+json ${DIGEST} 300.0 B linux/amd64 -`,
  ].join('\n');
  t.deepEqual(parseCtrImages(out), [
    { ref: 'registry.labsmith.invalid/tests/hello:1.0', digest: DIGEST, labels: ['io.cri-containerd.image=managed', 'io.cri-containerd.pinned=pinned'], pinned: true },
    { ref: 'example.test/other:2', digest: DIGEST, labels: [], pinned: false },
  ]);
  t.deepEqual(parseCtrImages('REF TYPE DIGEST SIZE PLATFORMS LABELS\n'), []);
});

const PLUGINS_OK = 'TYPE ID PLATFORMS STATUS\nio.containerd.cri.v1 images - ok\nio.containerd.cri.v1 runtime linux/amd64 ok\nio.containerd.grpc.v1 cri - ok\n';

test('the config checks pass on our version 3 file and name each key that is wrong', (t) => {
  const keys = readConfigKeys(renderContainerd2Config({ kubernetesVersion: '1.38' }));
  const good = checkConfigDump(keys, PLUGINS_OK, 'registry.k8s.io/pause:3.10.1');
  t.true(good.criPluginsOk);
  t.deepEqual(good.checks.filter((c) => !c.ok), []);
  const bad = checkConfigDump({ ...keys, systemdCgroup: false, cniBinDirs: ['/usr/lib/cni'] }, PLUGINS_OK.replace('runtime linux/amd64 ok', 'runtime linux/amd64 error'), 'registry.k8s.io/pause:3.11');
  t.false(bad.criPluginsOk);
  t.deepEqual(bad.checks.filter((c) => !c.ok).map((c) => c.what), [
    'the CRI images and runtime plugins loaded (ctr plugins ls: ok)',
    'the pinned sandbox image is registry.k8s.io/pause:3.11',
    'runc runs with SystemdCgroup = true',
    'CNI plugins are read from /opt/cni/bin',
  ]);
  // The 1.7 file has none of containerd 2's keys: compared with ours, every kubelet key differs.
  const old = readConfigKeys(renderContainerdConfig({}));
  t.deepEqual(compareConfigKeys(keys, old).map((d) => d.key), ['version', 'sandbox', 'defaultRuntime', 'runtimeType', 'systemdCgroup', 'cniBinDirs', 'cniConfDir', 'registryConfigPath']);
  t.deepEqual(compareConfigKeys(keys, keys), []);
});

test('images kept: same digest, still pinned if pinned before', (t) => {
  const a = { ref: 'a:1', digest: DIGEST, labels: [], pinned: true };
  t.deepEqual(checkImagesKept([a], [a]).map((c) => c.ok), [true]);
  t.deepEqual(checkImagesKept([a], [{ ...a, pinned: false }]).map((c) => c.detail), [`${DIGEST} not pinned`]);
  t.deepEqual(checkImagesKept([a], []).map((c) => c.detail), ['missing after the move']);
  t.false(checkImagesKept([a], [{ ...a, digest: `sha256:${'c'.repeat(64)}` }])[0]!.ok);
});

test("docker's verdict: works, breaks (saying what), absent", (t) => {
  const ok = parseDockerState(parseSections('@@docker-info\n26.1.5 containerd=abc driver=overlay2\n@@docker-info.exit\n0\n@@docker-version\nEngine 26.1.5\n@@docker-version.exit\n0\n@@docker-run\nhello\n@@docker-run.exit\n0\n'), 'h:1');
  t.deepEqual(ok.run, { image: 'h:1', ok: true, output: 'hello', stderr: '' });
  t.is(judgeDocker(ok, ok).verdict, 'works');
  const broken: DockerState = { ...ok, run: { image: 'h:1', ok: false, output: '', stderr: 'failed to create shim task' } };
  const v = judgeDocker(ok, broken);
  t.is(v.verdict, 'breaks');
  t.regex(v.detail, /after: info ok; run h:1 failed: failed to create shim task/);
  const api = parseDockerState(parseSections('@@docker-info\n{"ServerVersion":"26.1.5","Driver":"overlay2","ContainerdCommit":{"ID":"1.7.24~ds1"}}\n@@docker-info.exit\n0\n@@docker-version\n{"Components":[{"Name":"Engine","Version":"26.1.5"},{"Name":"containerd","Version":"2.1.9"}]}\n@@docker-version.exit\n0\n'));
  t.deepEqual([api.info.detail, api.components], ['26.1.5 containerd=1.7.24~ds1 driver=overlay2', 'Engine 26.1.5\ncontainerd 2.1.9']);
  const none = parseDockerState(parseSections('@@docker-info\ndocker: not installed\n@@docker-info.exit\n127\n'));
  t.is(judgeDocker(none, none).verdict, 'absent');
});

test('deb control fields', (t) => {
  t.deepEqual(parseDebControl('Package: containerd\nVersion: 2.1.9+ds1-5\nDescription: x\n more\nSHA256: ab'), { Package: 'containerd', Version: '2.1.9+ds1-5', Description: 'x', SHA256: 'ab' });
});

test('the static hello fixture is a real executable', async (t) => {
  await withTempDir(async (dir) => {
    await writeFile(join(dir, 'hello'), staticHelloElf(), { mode: 0o755 });
    t.is((await run(join(dir, 'hello'), [])).stdout, STATIC_HELLO_OUTPUT.trim());
  });
});

testUnless(missingCommand('shellcheck'), 'the guest script is shellcheck clean', async (t) => {
  const r = await run('shellcheck', ['--shell=sh', SCRIPT], { allowFailure: true });
  t.is(r.exitCode, 0, r.stdout);
});

testUnless(missingCommand('dpkg-deb', 'sha256sum'), 'verify-debs on real tools: the pinned file passes; a changed byte or another version is refused before anything is installed', async (t) => {
  await withTempDir(async (dir) => {
    // A fixture .deb with containerd 2's name and version (not the real package).
    const tree = join(dir, 'tree');
    await mkdir(join(tree, 'DEBIAN'), { recursive: true });
    await writeFile(join(tree, 'DEBIAN', 'control'), 'Package: containerd\nVersion: 2.1.9+ds1-5\nArchitecture: amd64\nMaintainer: labsmith tests <tests@labsmith.invalid>\nDescription: fixture standing in for containerd 2\n');
    const debs = join(dir, 'debs');
    await mkdir(debs);
    const deb = join(debs, 'containerd_2.1.9+ds1-5_amd64.deb');
    await run('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', tree, deb]);
    const facts: DebFacts = { file: deb, package: 'containerd', version: '2.1.9+ds1-5', sha256: await sha256File(deb) };
    const params = join(dir, 'params.env');
    const write = async (p: DebFacts[], sums = renderDebSums([facts])) => {
      await writeFile(join(dir, 'sums'), sums);
      await writeFile(params, renderMigrationParams({ debs: p, containerd: p[0]! }, { ...pathsIn(dir), debs, sums: join(dir, 'sums') }));
    };
    const verify = () => run('sh', [SCRIPT, params, 'verify-debs'], { allowFailure: true });

    await write([facts]);
    const ok = await verify();
    t.is(ok.exitCode, 0, ok.stderr);
    t.is(ok.stdout, 'verified containerd 2.1.9+ds1-5 (containerd_2.1.9+ds1-5_amd64.deb)');

    await write([{ ...facts, version: '2.1.10+ds1-1' }]);
    const other = await verify();
    t.is(other.exitCode, 1);
    t.regex(other.stderr, /no \.deb in .* is containerd 2\.1\.10\+ds1-1/);

    await write([facts]);
    const bytes = await readFile(deb);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 1;
    await writeFile(deb, bytes);
    const tampered = await verify();
    t.is(tampered.exitCode, 1);
    t.regex(tampered.stderr, /does not match its pinned sha256/);
  });
});

function pathsIn(dir: string) {
  return {
    dir, debs: join(dir, 'debs'), sums: join(dir, 'sums'), params: join(dir, 'params.env'), script: SCRIPT,
    newConfig: join(dir, 'new.toml'), migrateOutput: join(dir, 'migrate.toml'), backup: join(dir, 'backup'), aptPreferences: join(dir, 'pref'),
  } as const;
}

testUnless(missingCommand('qemu-system-x86_64'), 'the qemu driver restarts only a lab that recorded its qemu argv and is stopped', async (t) => {
  const { QemuDriver } = await import('../../lab/drivers/qemu.ts');
  await withTempDir(async (dir) => {
    const state = { name: 'x', driver: 'qemu', accel: 'tcg', startedAt: new Date().toISOString(), hostAddress: '127.0.0.1', forwards: [], sshUser: 'u', imageDir: dir } as const;
    await t.throwsAsync(new QemuDriver().restart({ ...state, forwards: [] }, dir), { message: /recorded no qemu command line/ });
    // A pid file naming a live process that is not this lab's qemu does not count as running; qemu's refusal of a bad argv is reported from qemu.log.
    await writeFile(join(dir, 'qemu.pid'), String(process.pid));
    const e = await t.throwsAsync(new QemuDriver().restart({ ...state, forwards: [], qemuArgs: ['-no-such-option'] }, dir));
    t.regex(e!.message, /qemu refused to start/);
  });
});
