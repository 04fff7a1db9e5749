/**
 * containerd 2's config, proven on Debian forky's real containerd 2 (a test fixture download; the
 * host keeps containerd 1.7): the rendered file loads (`config dump` returns our keys), matches
 * what `config migrate` makes of today's 1.7 config key by key, and a daemon started on it takes
 * the fixture OCI image into k8s.io, pinned.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { renderContainerdConfig } from '../../cloud-init/containerd-config.ts';
import { run } from '../../core/exec.ts';
import { sleep } from '../../core/sleep.ts';
import { renderContainerd2Config } from '../../lab/upgrade/containerd2-config.ts';
import { containerd2OrSkipReason } from '../fixtures/containerd2.ts';
import { buildOciLayout, ociArchiveFromLayout } from '../fixtures/oci.ts';
import { missingCommand, notRoot, testUnless, withTempDir } from '../helpers.ts';

const fetched = notRoot() ?? missingCommand('apt-get', 'dpkg-deb', 'skopeo') ? {} : await containerd2OrSkipReason();
const reason = notRoot() ?? missingCommand('apt-get', 'dpkg-deb', 'skopeo') ?? fetched.reason;
const bins = fetched.bins!;

type Toml = Record<string, any>;
const dig = (t: Toml, ...path: string[]): any => path.reduce((o, k) => (o == null ? undefined : o[k]), t);
const IMAGES = 'io.containerd.cri.v1.images';
const RUNTIME = 'io.containerd.cri.v1.runtime';
const PAUSE = 'registry.k8s.io/pause:3.10.1';

/** The keys the kubelet depends on, read from a containerd 2 (full) config. */
function kubeletKeys(c: Toml) {
  return {
    version: c.version,
    sandbox: dig(c, 'plugins', IMAGES, 'pinned_images', 'sandbox'),
    defaultRuntime: dig(c, 'plugins', RUNTIME, 'containerd', 'default_runtime_name'),
    runtimeType: dig(c, 'plugins', RUNTIME, 'containerd', 'runtimes', 'runc', 'runtime_type'),
    systemdCgroup: dig(c, 'plugins', RUNTIME, 'containerd', 'runtimes', 'runc', 'options', 'SystemdCgroup'),
    cniBinDirs: dig(c, 'plugins', RUNTIME, 'cni', 'bin_dirs'),
    cniConfDir: dig(c, 'plugins', RUNTIME, 'cni', 'conf_dir'),
    registryConfigPath: dig(c, 'plugins', IMAGES, 'registry', 'config_path'),
  };
}

testUnless(reason, 'the rendered version 3 config loads in containerd 2.x and equals config migrate of the 1.7 config key by key', async (t) => {
  t.log(bins.version);
  await withTempDir(async (dir) => {
    const mine = join(dir, 'config.toml');
    await writeFile(mine, renderContainerd2Config({ kubernetesVersion: '1.38' }));
    const dumped = parseToml((await run(bins.containerd, ['-c', mine, 'config', 'dump'])).stdout) as Toml;
    const keys = kubeletKeys(dumped);
    t.deepEqual(keys, {
      version: 3, sandbox: PAUSE, defaultRuntime: 'runc', runtimeType: 'io.containerd.runc.v2',
      systemdCgroup: true, cniBinDirs: ['/opt/cni/bin'], cniConfDir: '/etc/cni/net.d', registryConfigPath: '/etc/containerd/certs.d',
    });

    const old = join(dir, 'config-1.7.toml');
    await writeFile(old, renderContainerdConfig({ kubernetesVersion: '1.37' }));
    const migrated = parseToml((await run(bins.containerd, ['-c', old, 'config', 'migrate'])).stdout) as Toml;
    t.deepEqual(kubeletKeys(migrated), keys, 'containerd 2 migrates the 1.7 config to the same kubelet keys');
    const grpcCri = dig(migrated, 'plugins', 'io.containerd.grpc.v1.cri') as Toml;
    t.deepEqual([grpcCri.sandbox_image, grpcCri.containerd, grpcCri.cni], [undefined, undefined, undefined], 'in 2.x the grpc CRI plugin keeps only the streaming server: image, runtime and CNI keys moved');
  });
});

testUnless(reason, 'containerd 2 started on the rendered config (private socket/root/state) imports the fixture OCI image into k8s.io, pinned', async (t) => {
  await withTempDir(async (dir) => {
    const { layout, manifestDigest } = await buildOciLayout(join(dir, 'build'), '1.0');
    const ref = 'registry.labsmith.invalid/tests/hello:1.0';
    const archive = join(dir, 'hello.oci.tar');
    await ociArchiveFromLayout(layout, '1.0', ref, archive);
    const socket = join(dir, 'c', 'containerd.sock');
    await mkdir(join(dir, 'c'), { recursive: true });
    const config = join(dir, 'c', 'config.toml');
    // Top-level keys must precede the tables: root/state first, the socket table last.
    await writeFile(config, `root = "${dir}/c/root"\nstate = "${dir}/c/state"\n${renderContainerd2Config({ kubernetesVersion: '1.38' })}\n[grpc]\n  address = "${socket}"\n[ttrpc]\n  address = "${socket}.ttrpc"\n`);
    const daemon = spawn(bins.containerd, ['--config', config], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 150 && !existsSync(socket); i++) await sleep(100);
      const ctr = (...args: string[]) => run(bins.ctr, ['--address', socket, '--namespace', 'k8s.io', ...args], { timeoutMs: 60_000 });
      t.regex((await ctr('version')).stdout, /Server:[\s\S]*Version:\s+2\./);
      await ctr('images', 'import', archive);
      await ctr('images', 'label', ref, 'io.cri-containerd.pinned=pinned');
      const line = (await ctr('images', 'ls')).stdout.split('\n').find((l) => l.startsWith(`${ref} `));
      t.truthy(line);
      t.true(line!.includes(manifestDigest));
      t.true(line!.includes('io.cri-containerd.pinned=pinned'));
      const plugins = (await ctr('plugins', 'ls')).stdout;
      t.regex(plugins, /io\.containerd\.cri\.v1\s+images\s+.*\bok\b/, 'the CRI images plugin loaded from our config');
    } finally {
      daemon.kill('SIGTERM');
      await new Promise((resolve) => daemon.once('exit', resolve));
    }
  });
});
