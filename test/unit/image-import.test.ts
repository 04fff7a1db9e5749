/**
 * The first-boot image import, run for real: an OCI archive built from a tiny rootfs, archived
 * by skopeo, imported by the shipped import script (its parameter file pointing at the test's
 * paths) into a containerd the test starts.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../core/exec.ts';
import { sleep } from '../../core/sleep.ts';
import { imageArchiveName, ociArchiveDigest } from '../../images/artifacts/store.ts';
import { guestScriptPath } from '../../cloud-init/guest-scripts.ts';
import { PINNED_LABEL, renderImageList, renderImportImagesParams } from '../../images/kubernetes/rootfs-files.ts';
import { buildOciLayout, ociArchiveFromLayout } from '../fixtures/oci.ts';
import { missingCommand, notRoot, testUnless, withTempDir } from '../helpers.ts';

const reason = notRoot() ?? missingCommand('containerd', 'ctr', 'skopeo');
const REF = 'registry.labsmith.invalid/tests/hello:1.0';

async function withContainerd(dir: string, body: (socket: string) => Promise<void>): Promise<void> {
  const socket = join(dir, 'containerd.sock');
  const config = join(dir, 'containerd.toml');
  await mkdir(dir, { recursive: true });
  await writeFile(config, `version = 2\nroot = "${dir}/root"\nstate = "${dir}/state"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "${socket}"\n`);
  const daemon = spawn('containerd', ['--config', config], { stdio: 'ignore' });
  try {
    for (let i = 0; i < 100 && !existsSync(socket); i++) await sleep(100);
    await run('ctr', ['--address', socket, 'version'], { timeoutMs: 10_000 });
    await body(socket);
  } finally {
    daemon.kill('SIGTERM');
    await new Promise((resolve) => daemon.once('exit', resolve));
  }
}

testUnless(reason, 'baked OCI archives are imported into containerd k8s.io, pinned, once; a missing image fails the unit', async (t) => {
  await withTempDir(async (dir) => {
    const { layout, manifestDigest } = await buildOciLayout(join(dir, 'build'), '1.0');
    const images = join(dir, 'images');
    await mkdir(images);
    const archive = join(images, imageArchiveName(REF));
    await ociArchiveFromLayout(layout, '1.0', REF, archive);
    t.is(await ociArchiveDigest(archive), manifestDigest, 'the archive holds exactly the manifest built (what the lock pins)');
    await writeFile(join(images, 'images.list'), renderImageList({ [REF]: manifestDigest }));
    // The shipped script, with a parameter file pointing at the test's paths, as the unit passes the node's.
    const script = guestScriptPath('importImages');
    const params = join(dir, 'import-images.env');

    await withContainerd(join(dir, 'containerd'), async (socket) => {
      await writeFile(params, renderImportImagesParams({ imagesDir: images, stateDir: join(dir, 'imported'), containerdAddress: socket }));
      const first = await run(script, [params]);
      t.regex(first.stdout, /importing registry\.labsmith\.invalid_tests_hello_1\.0\.oci\.tar/);
      t.regex(first.stdout, /1 images present and pinned/);

      const ls = await run('ctr', ['--address', socket, '--namespace', 'k8s.io', 'images', 'ls']);
      const line = ls.stdout.split('\n').find((l) => l.startsWith(`${REF} `));
      t.truthy(line, ls.stdout);
      t.true(line!.includes(manifestDigest), 'the image keeps its manifest digest');
      t.true(line!.includes(PINNED_LABEL), 'pinned, so the kubelet image GC keeps it');
      const other = await run('ctr', ['--address', socket, '--namespace', 'default', 'images', 'ls', '-q']);
      t.is(other.stdout.trim(), '', "nothing lands in containerd's default namespace");

      const again = await run(script, [params]);
      t.notRegex(again.stdout, /importing/, 'a reboot does not import again');

      await writeFile(join(images, 'images.list'), `${REF}\nregistry.labsmith.invalid/tests/missing:1.0\n`);
      const missing = await run(script, [params], { allowFailure: true });
      t.not(missing.exitCode, 0);
      t.regex(missing.stderr, /registry\.labsmith\.invalid\/tests\/missing:1\.0 is not in containerd after the import/);
    });
  });
});
