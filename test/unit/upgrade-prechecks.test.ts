/**
 * Upgrade pre-checks on real inputs: skew and containerd floors, removed APIs in manifest files
 * on disk, and image completeness read from a real containerd the test starts.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../core/exec.ts';
import { sleep } from '../../core/sleep.ts';
import { apisRemovedIn, checkContainerd, checkDiskSpace, checkImages, checkRemovedApis, checkVersionSkew, parseCtrImages, REMOVED_APIS, runPrechecks } from '../../lab/upgrade/prechecks.ts';
import { buildOciLayout, ociArchiveFromLayout } from '../fixtures/oci.ts';
import { missingCommand, notRoot, testUnless, withTempDir } from '../helpers.ts';

test('one minor at a time: 1.37 → 1.39 is refused with the path through 1.38; downgrades and no-ops refused', (t) => {
  t.deepEqual(checkVersionSkew('1.37.2', '1.38'), []);
  const skip = checkVersionSkew('1.37', '1.39');
  t.is(skip.length, 1);
  t.regex(skip[0]!.hint, /1\.37 → 1\.38 → 1\.39/);
  t.regex(checkVersionSkew('1.38', '1.37')[0]!.message, /downgrade/);
  t.regex(checkVersionSkew('1.37', '1.37')[0]!.message, /already runs 1\.37/);
  t.regex(checkVersionSkew('1.37', 'latest')[0]!.message, /target "latest"/);
});

test('containerd floor: 1.38 refuses 1.7, accepts 2.x; 1.37 accepts 1.7', (t) => {
  t.regex(checkContainerd('containerd github.com/containerd/containerd 1.7.24~ds1', '1.38')[0]!.message, /needs containerd ≥ 2\.0; the node has 1\.7\.24/);
  t.deepEqual(checkContainerd('containerd github.com/containerd/containerd/v2 2.1.9+unknown', '1.38'), []);
  t.deepEqual(checkContainerd('1.7.24~ds1-6', '1.37'), []);
  t.is(checkContainerd('1.7.24', '1.39').length, 1, 'later minors inherit the floor');
});

const BAD = `# user manifests
apiVersion: v1
kind: ConfigMap
metadata: {name: fine}
---
apiVersion: flowcontrol.apiserver.k8s.io/v1beta3
kind: FlowSchema
metadata:
  name: mail-priority
spec: {}
---
apiVersion: batch/v1beta1
kind: CronJob
metadata: {name: old-but-removed-earlier, namespace: web}
`;
const GOOD = `apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: FlowSchema
metadata: {name: mail-priority}
`;

test('removed APIs: the table documents none for 1.38; a documented removal (1.32) is found in a file with object, line and replacement', async (t) => {
  t.deepEqual(apisRemovedIn('1.38'), [], 'the deprecation guide documents no removal in 1.38');
  t.is(apisRemovedIn('1.32').length, 1);
  await withTempDir(async (dir) => {
    await writeFile(join(dir, 'bad.yaml'), BAD);
    await writeFile(join(dir, 'good.yaml'), GOOD);
    const files = await Promise.all(['bad.yaml', 'good.yaml'].map(async (f) => ({ path: join(dir, f), text: await readFile(join(dir, f), 'utf8') })));
    const problems = checkRemovedApis(files, '1.32');
    t.is(problems.length, 1, JSON.stringify(problems));
    t.is(problems[0]!.message, `${join(dir, 'bad.yaml')}:6: FlowSchema mail-priority uses flowcontrol.apiserver.k8s.io/v1beta3, which Kubernetes 1.32 no longer serves`);
    t.is(problems[0]!.hint, 'change apiVersion to flowcontrol.apiserver.k8s.io/v1');
    t.regex(checkRemovedApis(files, '1.25')[0]!.message, /bad\.yaml:12: CronJob web\/old-but-removed-earlier uses batch\/v1beta1/);
    t.deepEqual(checkRemovedApis(files, '1.38'), []);
    t.regex(checkRemovedApis([{ path: 'broken.yaml', text: 'a: [1,\n' }], '1.38')[0]!.message, /broken\.yaml:\d+: not valid YAML/);
  });
  t.true(REMOVED_APIS.every((r) => r.replacement.length > 0));
});

test('disk: each mount against what the upgrade needs there', (t) => {
  t.deepEqual(checkDiskSpace({ '/var': 4 * 2 ** 30 }, { '/var': 2 * 2 ** 30 }), []);
  t.is(checkDiskSpace({ '/var': 2 ** 30 }, { '/var': 3 * 2 ** 30 })[0]!.message, '/var has 1024 MiB free, the upgrade needs 3072 MiB');
  t.regex(checkDiskSpace({}, { '/': 1 })[0]!.message, /no free-space figure for \//);
});

test('all pre-checks report together', (t) => {
  const problems = runPrechecks({
    installedKubernetes: '1.37', target: '1.39', installedContainerd: '1.7.24',
    manifests: [], neededImages: { 'registry.k8s.io/pause:3.10.1': `sha256:${'a'.repeat(64)}` }, containerdImages: [],
    freeBytes: { '/var': 1 }, neededBytes: { '/var': 2 },
  });
  t.deepEqual(problems.map((p) => p.check), ['version-skew', 'containerd', 'images', 'disk']);
});

const reason = notRoot() ?? missingCommand('containerd', 'ctr', 'skopeo');
const PINNED = 'registry.labsmith.invalid/tests/pinned:1.0';
const UNPINNED = 'registry.labsmith.invalid/tests/unpinned:1.0';

testUnless(reason, 'image completeness against a real containerd: present+pinned passes; unpinned, wrong digest and missing are each named', async (t) => {
  await withTempDir(async (dir) => {
    const { layout, manifestDigest } = await buildOciLayout(join(dir, 'build'), '1.0');
    const socket = join(dir, 'c', 'containerd.sock');
    await mkdir(join(dir, 'c'), { recursive: true });
    const config = join(dir, 'c', 'config.toml');
    await writeFile(config, `version = 2\nroot = "${dir}/c/root"\nstate = "${dir}/c/state"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "${socket}"\n`);
    const daemon = spawn('containerd', ['--config', config], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 100 && !existsSync(socket); i++) await sleep(100);
      const ctr = (...args: string[]) => run('ctr', ['--address', socket, '--namespace', 'k8s.io', ...args], { timeoutMs: 60_000 });
      for (const ref of [PINNED, UNPINNED]) {
        const archive = join(dir, `${ref.replace(/[^a-z0-9]+/g, '_')}.tar`);
        await ociArchiveFromLayout(layout, '1.0', ref, archive);
        await ctr('images', 'import', archive);
      }
      await ctr('images', 'label', PINNED, 'io.cri-containerd.pinned=pinned');
      const present = parseCtrImages((await ctr('images', 'ls')).stdout);
      t.deepEqual(present.map((i) => i.ref).sort(), [PINNED, UNPINNED]);
      t.true(present.every((i) => i.digest === manifestDigest));

      t.deepEqual(checkImages({ [PINNED]: manifestDigest }, present), []);
      const problems = checkImages({
        [PINNED]: `sha256:${'0'.repeat(64)}`,
        [UNPINNED]: manifestDigest,
        'registry.labsmith.invalid/tests/missing:1.0': manifestDigest,
      }, present);
      t.deepEqual(problems.map((p) => p.message.split(' ')[0]), [PINNED, UNPINNED, 'registry.labsmith.invalid/tests/missing:1.0']);
      t.regex(problems[0]!.message, /the lock says sha256:0{64}/);
      t.regex(problems[1]!.message, /is not pinned/);
      t.regex(problems[2]!.message, /is not in containerd's k8s\.io namespace/);
    } finally {
      daemon.kill('SIGTERM');
      await new Promise((resolve) => daemon.once('exit', resolve));
    }
  });
});
