/**
 * What makes the first boot short (issue 15): the work baked into the image instead of done by
 * cloud-init, the seed's short module lists, and the boot chain's arguments. The figures
 * themselves are in `npm run bench`.
 */
import { summarizeRuns } from '../../core/units.ts';
import test from 'ava';
import { parse as parseToml } from 'smol-toml';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { DPKG_EXCLUDES, OS_PACKAGES } from '../../images/recipe.ts';
import { extractBootFiles } from '../../images/disk.ts';
import { planDiskCommands, planDiskLayout } from '../../images/disk-plan.ts';
import { join } from 'node:path';
import { run } from '../../core/exec.ts';
import { GUEST_PATHS } from '../../core/paths.ts';
import { CONTAINERD_CERTS_DIR } from '../../cloud-init/containerd-config.ts';
import { renderSeedFiles, seedModules, SYSTEM_CA_BUNDLE } from '../../cloud-init/user-data.ts';
import { parseLabConfig } from '../../config/load.ts';
import { CLOUD_INIT_SKIPPED_MODULE, INITRAMFS_NO_HWDB_HOOK, KERNEL_CMDLINE, KERNEL_OPTIONS_VARIABLE, LAB_KERNEL_OPTIONS, renderEarlyRootfsFiles, KUBERNETES_MODULES, MASKED_GENERATORS, MASKED_UNITS, renderConfigureHook, renderKernelCommandLine, renderDirectBootCommandLine, renderLateRootfsFiles, SOCKET_ACTIVATED_UNITS, SSHD_CONFIG_FILE } from '../../images/boot-files.ts';
import { renderKubernetesRootfsFiles } from '../../images/kubernetes/rootfs-files.ts';
import type { KubernetesLayerInputs } from '../../images/recipe.ts';
import { renderQemuArgs, type QemuPlan } from '../../lab/drivers/qemu-args.ts';
import { renderControlPath, renderSshArgs } from '../../lab/ssh.ts';
import { missingCommand, NEUTRAL_HOST, readSeedUserData, testUnless, withTempDir } from '../helpers.ts';

const late = renderLateRootfsFiles({ rootUuid: '11111111-2222-4333-8444-555555555555', espVolumeId: '1A2B3C4D' });
const containerdPath = GUEST_PATHS.containerdConfig.slice(1);

const config = (() => {
  const r = parseLabConfig('name: web\nssh: { user: ops }\n', NEUTRAL_HOST, '/state');
  if (!r.ok) throw new Error('fixture config invalid');
  return r.config;
})();
const secrets = { sshPublicKey: 'ssh-ed25519 AAAA x', hostKey: { privateKey: 'k', publicKey: 'ssh-ed25519 BBBB h' }, caCert: 'CA PEM\n', tlsCert: 'c', tlsKey: 'k' };

test('the image carries kubeadm\'s modules and sysctls, loaded and applied by systemd at boot', (t) => {
  t.is(late['etc/modules-load.d/labsmith-kubernetes.conf']!.content, `${KUBERNETES_MODULES.join('\n')}\n`);
  t.regex(late['etc/sysctl.d/90-labsmith-kubernetes.conf']!.content, /^net\.bridge\.bridge-nf-call-iptables = 1\nnet\.bridge\.bridge-nf-call-ip6tables = 1\nnet\.ipv4\.ip_forward = 1\n$/);
});

test('the image carries containerd\'s config for the kubelet, with per-registry settings read from certs.d', (t) => {
  const cri = (parseToml(late[containerdPath]!.content) as any).plugins['io.containerd.grpc.v1.cri'];
  t.true(cri.containerd.runtimes.runc.options.SystemdCgroup);
  t.is(cri.registry.config_path, CONTAINERD_CERTS_DIR);
  t.is(cri.sandbox_image, 'registry.k8s.io/pause:3.10.1');
});

test('the Kubernetes layer rewrites containerd\'s config with the locked pause image', (t) => {
  const k: KubernetesLayerInputs = {
    minor: '1.37',
    repository: 'https://pkgs.k8s.io/core:/stable:/v1.37/deb/',
    keyringSha256: 'a'.repeat(64),
    keyFingerprint: 'B'.repeat(40),
    packages: {},
    images: { 'registry.k8s.io/pause:3.10.9': `sha256:${'c'.repeat(64)}`, 'registry.k8s.io/etcd:3.6.0-0': `sha256:${'d'.repeat(64)}` },
  };
  const cri = (parseToml(renderKubernetesRootfsFiles(k)[containerdPath]!.content) as any).plugins['io.containerd.grpc.v1.cri'];
  t.is(cri.sandbox_image, 'registry.k8s.io/pause:3.10.9');
});

testUnless(missingCommand('containerd'), 'containerd itself reads the baked config with its certs.d directory', async (t) => {
  await withTempDir(async (dir) => {
    await writeFile(join(dir, 'config.toml'), late[containerdPath]!.content);
    const dump = await run('containerd', ['--config', join(dir, 'config.toml'), 'config', 'dump']);
    t.regex(dump.stdout, /config_path = "\/etc\/containerd\/certs\.d"/);
    t.regex(dump.stdout, /SystemdCgroup = true/);
  });
});

test('the configure hook: docker on its socket, idle timers masked, NeedsUpdate units satisfied', (t) => {
  const hook = renderConfigureHook();
  t.deepEqual([...SOCKET_ACTIVATED_UNITS], ['docker.service']);
  t.regex(hook, /chroot "\$1" systemctl disable docker\.service\n/);
  t.regex(hook, new RegExp(`chroot "\\$1" systemctl mask ${MASKED_UNITS.join(' ').replace(/\./g, '\\.')}\\n`));
  for (const unit of ['apt-daily.timer', 'apt-daily-upgrade.timer', 'e2scrub_reap.service']) t.true((MASKED_UNITS as readonly string[]).includes(unit));
  t.regex(hook, /: > "\$1\/etc\/\.updated"\n: > "\$1\/var\/\.updated"\n/);
  for (const unit of ['modprobe@drm.service', 'modprobe@efi_pstore.service']) t.true((MASKED_UNITS as readonly string[]).includes(unit));
  // apparmor.service loads /etc/apparmor.d, where dpkg installs no package's profile in this image.
  t.true((MASKED_UNITS as readonly string[]).includes('apparmor.service'));
  t.true(DPKG_EXCLUDES.includes('path-exclude=/etc/apparmor.d/*'));
  t.false(DPKG_EXCLUDES.some((e) => e.startsWith('path-include=/etc/apparmor.d/') && !/\/(abstractions|abi|tunables|local)\/\*$/.test(e)), 'only the includes profiles build on');
  // containerd starts without its own `modprobe overlay`: modules-load.d loads it at boot.
  t.is(late['etc/systemd/system/containerd.service.d/10-labsmith.conf']!.content, '[Service]\nExecStartPre=\n');
  t.true(late['etc/modules-load.d/labsmith-kubernetes.conf']!.content.split('\n').includes('overlay'));
  t.true(hook.includes(`for generator in ${MASKED_GENERATORS.join(' ')}; do ln -sf /dev/null "$1/etc/systemd/system-generators/$generator"; done`));
  t.false((MASKED_GENERATORS as readonly string[]).includes('cloud-init-generator'), 'cloud-init is enabled by its generator');
});

test('what cloud-init\'s locale, timezone and set_passwords modules would set is baked; cloud-init starts without jsonschema', (t) => {
  t.is(late['etc/default/locale']!.content, 'LANG=C.UTF-8\n');
  t.regex(late[SSHD_CONFIG_FILE.slice(1)]!.content, /^PasswordAuthentication no$/m);
  // sshd keeps the first value it reads: ours must sort before cloud-init's 50-cloud-init.conf.
  t.true(SSHD_CONFIG_FILE.split('/').pop()! < '50-cloud-init.conf');
  for (const module of ['locale', 'timezone', 'set_passwords']) t.false(Object.values(seedModules()).some((list) => (list as readonly string[]).includes(module)), module);
  t.true(renderConfigureHook().includes(`rm -rf "$1${CLOUD_INIT_SKIPPED_MODULE}"\n`));
});

testUnless(missingCommand('shellcheck'), 'the configure hook is shellcheck clean', async (t) => {
  await withTempDir(async (dir) => {
    await writeFile(join(dir, 'configure.sh'), renderConfigureHook());
    const r = await run('shellcheck', ['-s', 'sh', join(dir, 'configure.sh')], { allowFailure: true });
    t.is(r.exitCode, 0, r.stdout);
  });
});

test('GRUB boots at once with a quiet kernel and one serial console', (t) => {
  const grub = late['boot/grub/grub.cfg']!.content;
  t.regex(grub, /^set timeout=0$/m);
  t.true(KERNEL_CMDLINE.split(' ').includes('quiet'));
  t.true(KERNEL_CMDLINE.split(' ').includes('no_timer_check'), 'a loaded TCG host must not panic the guest in the timer check');
  t.true(KERNEL_CMDLINE.split(' ').includes('panic=10'), 'a kernel panic reboots the machine instead of hanging it');
  t.is(KERNEL_CMDLINE.split(' ').filter((w) => w.startsWith('console=ttyS')).length, 1);
  t.true(grub.includes(KERNEL_CMDLINE));
  // The ESP's environment block (empty in the image) adds a machine's own options; a lab's go there.
  t.true(grub.includes(`linux /vmlinuz ${renderKernelCommandLine('11111111-2222-4333-8444-555555555555')} $${KERNEL_OPTIONS_VARIABLE}\n`));
  // A lab's options, by either path: root read-write from the start (no remount before cloud-init),
  // no root fsck (and no systemd unit to skip it), q35's SATA controller and the KVM modules for
  // TCG's advertised SVM not loaded, no crypto self-tests.
  t.deepEqual(LAB_KERNEL_OPTIONS.split(' '), [
    'rw', 'rootflags=errors=remount-ro', 'systemd.mask=systemd-remount-fs.service',
    'fsck.mode=skip', 'systemd.mask=systemd-fsck-root.service', 'modprobe.blacklist=ahci,kvm_amd,kvm_intel', 'cryptomgr.notests=1',
  ]);
  t.is(late['etc/fstab']!.content.split('\n')[0], 'UUID=11111111-2222-4333-8444-555555555555 / ext4 defaults,errors=remount-ro 0 1', "rootflags are fstab's");
  // A direct kernel boot passes them after GRUB's options (the last of ro and rw wins), root by
  // partition GUID (no initramfs).
  t.is(
    renderDirectBootCommandLine('aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee'),
    `root=PARTUUID=aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee rootfstype=ext4 rootwait=30 ${KERNEL_CMDLINE} ${LAB_KERNEL_OPTIONS}`,
  );
  t.true(KERNEL_CMDLINE.startsWith('ro '), "a server's root is checked, then remounted read-write by systemd");
  t.false(grub.includes('cryptomgr') || grub.includes('modprobe.blacklist'), "a user's server keeps its modules and self-tests");
});

test('the seed restarts nothing and rehashes nothing: runcmd only starts the lab\'s own unit', (t) => {
  for (const cluster of [undefined, { kubeadmConfig: 'k', addons: [], pauseImage: 'registry.k8s.io/pause:3.10.1' }]) {
    const { cc } = readSeedUserData(renderSeedFiles(config, secrets, cluster)['user-data']);
    const commands = (cc.runcmd as string[][]).map((c) => c.join(' '));
    t.false(commands.includes('sysctl --system'));
    for (const slow of ['restart', 'daemon-reload', 'update-ca-certificates']) t.false(commands.some((c) => c.includes(slow)), `${slow} in runcmd: ${commands.join('; ')}`);
    t.true(commands.some((c) => /^systemctl enable --now --no-reload /.test(c)));
    t.true(commands.includes('modprobe -a overlay br_netfilter'), 'one guard in case systemd-modules-load timed out');
    t.true(commands.includes('sysctl -q -p /etc/sysctl.d/90-labsmith-kubernetes.conf'));
    const bundle = cc.write_files.find((f: { path: string }) => f.path === SYSTEM_CA_BUNDLE);
    t.deepEqual({ content: bundle.content, append: bundle.append }, { content: secrets.caCert, append: true });
  }
});

test('the seed runs only its modules, and grows the disk after SSH is up (only the filesystem where the driver grew the partition)', (t) => {
  for (const grown of [false, true]) {
    const { cc } = readSeedUserData(renderSeedFiles(config, secrets, undefined, { rootPartitionGrown: grown })['user-data']);
    t.deepEqual(cc.cloud_init_modules, [...seedModules().cloud_init_modules]);
    t.false(cc.cloud_init_modules.includes('growpart'), 'sshd waits for the network stage');
    t.is(cc.cloud_final_modules.includes('growpart'), !grown, grown ? 'the qemu driver grew the partition' : "libvirt and a user's server grow it in the guest");
    t.is('growpart' in cc, !grown);
    t.true(cc.cloud_final_modules.includes('resizefs'));
    t.is(cc.resize_rootfs, 'noblock');
    // Each key the seed sets is served by a module it keeps.
    const needs: Record<string, string> = { write_files: 'write_files', users: 'users_groups', ssh_keys: 'ssh', hostname: 'set_hostname', manage_etc_hosts: 'update_etc_hosts', runcmd: 'scripts_user', swap: 'mounts', growpart: 'growpart' };
    const all = [...cc.cloud_init_modules, ...cc.cloud_config_modules, ...cc.cloud_final_modules];
    for (const [key, module] of Object.entries(needs)) if (key in cc) t.true(all.includes(module), `${key} needs ${module}`);
    // runcmd writes the script scripts_user runs: before it, in the same stage; the config stage runs nothing.
    t.true(cc.cloud_final_modules.indexOf('runcmd') >= 0 && cc.cloud_final_modules.indexOf('runcmd') < cc.cloud_final_modules.indexOf('scripts_user'));
    t.deepEqual(cc.cloud_config_modules, []);
  }
});

testUnless(missingCommand('python3', 'cloud-init'), 'every module the seed names exists in cloud-init', async (t) => {
  const modules = [...new Set(Object.values(seedModules()).flat())];
  // cloud-init's own interpreter (its shebang), not whichever python3 comes first on PATH.
  const cloudInit = (await run('sh', ['-c', 'command -v cloud-init'])).stdout.trim();
  const python = (await readFile(cloudInit, 'utf8')).split('\n')[0]!.replace(/^#!\s*/, '').split(' ')[0]!;
  const r = await run(python, ['-c', `import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module('cloudinit.config.cc_' + m)`, ...modules], { allowFailure: true });
  t.is(r.exitCode, 0, r.stderr);
});

test('qemu under TCG: a large translation cache, and a NIC without an option ROM', (t) => {
  const plan: QemuPlan = { name: 'lab', accel: 'tcg', cpus: 2, memoryMiB: 4096, overlay: '/o', seedIso: '/s', boot: { kind: 'uefi', firmwareCode: '/c', firmwareVars: '/v' }, hostAddress: '127.0.0.1', forwards: [], serialLog: '/l', qemuLog: '/ql', pidFile: '/p', qmpSocket: '/q' };
  const args = renderQemuArgs(plan);
  t.is(args[args.indexOf('-accel') + 1], 'tcg,thread=multi,tb-size=512');
  t.true(args.includes('virtio-net-pci,netdev=net0,romfile='));
  t.false(renderQemuArgs({ ...plan, accel: 'kvm' }).some((a) => a.includes('tb-size')));
});

test('lab commands share one SSH connection: a short control path per lab and endpoint, a master that ends by itself', (t) => {
  const target = { stateDir: `/${'long/'.repeat(40)}lab`, user: 'admin', host: '127.0.0.1', port: 2222 };
  const path = renderControlPath(target, '/tmp/labsmith-ssh-0');
  t.true(path.length < 100, 'fits a Unix socket address whatever the lab directory');
  t.not(path, renderControlPath({ ...target, port: 2223 }, '/tmp/labsmith-ssh-0'));
  t.is(path, renderControlPath({ ...target }, '/tmp/labsmith-ssh-0'));
  const args = renderSshArgs(target, { multiplex: path });
  t.true(args.includes('ControlMaster=auto') && args.includes(`ControlPath=${path}`));
  t.true(args.includes('ControlPersist=30'), 'never a master that outlives its use');
  t.true(args.includes('ServerAliveInterval=5'), 'a hung guest ends the master');
  t.is(args.at(-1), 'admin@127.0.0.1', 'options before the destination');
  t.false(renderSshArgs(target).some((a) => a.startsWith('Control')), 'commands shown to people stay plain');
});

testUnless(missingCommand('shellcheck'), 'the initramfs leaves out udev\'s hardware database: the hook runs after udev\'s and removes it', async (t) => {
  const early = renderEarlyRootfsFiles();
  t.is(early['etc/initramfs-tools/hooks/labsmith-no-hwdb']!.content, INITRAMFS_NO_HWDB_HOOK);
  t.is(early['etc/initramfs-tools/hooks/labsmith-no-hwdb']!.mode, 0o755);
  await withTempDir(async (dir) => {
    const hook = join(dir, 'hook');
    await writeFile(hook, INITRAMFS_NO_HWDB_HOOK, { mode: 0o755 });
    t.is((await run('shellcheck', ['-s', 'sh', hook], { allowFailure: true })).exitCode, 0);
    t.is((await run(hook, ['prereqs'])).stdout.trim(), 'udev');
    await run('mkdir', ['-p', join(dir, 'initramfs/usr/lib/udev')]);
    await writeFile(join(dir, 'initramfs/usr/lib/udev/hwdb.bin'), 'db');
    await run(hook, [], { env: { DESTDIR: join(dir, 'initramfs') } });
    t.false(existsSync(join(dir, 'initramfs/usr/lib/udev/hwdb.bin')));
  });
  t.true(OS_PACKAGES.includes('zstd'), 'initramfs-tools compresses with zstd only when it is installed');
});

test('sshd starts once: the unit\'s separate configuration test is dropped', (t) => {
  t.is(late['etc/systemd/system/ssh.service.d/10-labsmith.conf']!.content, '[Service]\nExecStartPre=\nCPUWeight=500\n');
});

test("cloud-init's one process is first to the CPU at boot (a drop-in for the unit Debian's cloud-init ships)", (t) => {
  t.is(late['etc/systemd/system/cloud-init-main.service.d/10-labsmith.conf']!.content, '[Service]\nCPUWeight=500\n');
});

test('the disk layer copies the kernel and initramfs the root filesystem\'s /vmlinuz and /initrd.img name (what GRUB loads)', async (t) => {
  await withTempDir(async (dir) => {
    const root = join(dir, 'root');
    await run('mkdir', ['-p', join(root, 'boot')]);
    await writeFile(join(root, 'boot/vmlinuz-6.12.1-cloud-amd64'), 'kernel 6.12.1');
    await writeFile(join(root, 'boot/vmlinuz-6.11.9-cloud-amd64'), 'an older kernel');
    await writeFile(join(root, 'boot/initrd.img-6.12.1-cloud-amd64'), 'initramfs 6.12.1');
    await run('ln', ['-s', 'boot/vmlinuz-6.12.1-cloud-amd64', join(root, 'vmlinuz')]);
    await run('ln', ['-s', 'boot/initrd.img-6.12.1-cloud-amd64', join(root, 'initrd.img')]);
    await run('tar', ['-C', root, '-cf', join(dir, 'rootfs.tar'), '.']);
    await extractBootFiles(join(dir, 'rootfs.tar'), dir, { kernel: 'k', initrd: 'i' });
    t.is(await readFile(join(dir, 'k'), 'utf8'), 'kernel 6.12.1');
    t.is(await readFile(join(dir, 'i'), 'utf8'), 'initramfs 6.12.1');
    await run('rm', [join(root, 'initrd.img')]);
    await run('tar', ['-C', root, '-cf', join(dir, 'rootfs.tar'), '.']);
    await t.throwsAsync(extractBootFiles(join(dir, 'rootfs.tar'), dir, { kernel: 'k', initrd: 'i' }), { message: /no \/initrd\.img link/ });
  });
  const disk = planDiskCommands({ rootUuid: 'u', espVolumeId: '1A2B3C4D', diskGuid: 'g', espPartGuid: 'e', rootPartGuid: 'r', sourceDateEpoch: 1 }, planDiskLayout(0));
  t.true(disk.outputs.includes('vmlinuz') && disk.outputs.includes('initrd.img'), 'beside the disk, in its layer (and its SHA256SUMS)');
});

test("bench's repeated boots: the median and range of the runs", (t) => {
  t.deepEqual(summarizeRuns([44.1, 37.6, 40.8]), { median: 40.8, min: 37.6, max: 44.1 });
  t.deepEqual(summarizeRuns([41, 46, 44, 37]), { median: 42.5, min: 37, max: 46 });
  t.deepEqual(summarizeRuns([36.3]), { median: 36.3, min: 36.3, max: 36.3 });
  t.throws(() => summarizeRuns([]), { message: /no measurements/ });
});
