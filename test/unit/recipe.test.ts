import test from 'ava';
import { FIXTURE_IMAGE_INPUTS } from '../helpers.ts';
import { KUBERNETES_GUEST_PATHS } from '../../core/paths.ts';
import { BUILD_DIR, renderMmdebstrapArgs, STAGING_DIR } from '../../images/mmdebstrap.ts';
import { planDiskLayout, renderSgdiskArgs } from '../../images/disk.ts';
import { aptSources, bootLayer, IMAGE_RECIPE, OS_PACKAGES, planImageBuild, planRootSizeMiB, type ImageInputs, type KubernetesLayerInputs } from '../../images/recipe.ts';
import { renderKubernetesHook, renderKubernetesRootfsFiles } from '../../images/kubernetes/rootfs-files.ts';
import { fatUuid, renderEspGrubConfig, renderLateRootfsFiles } from '../../images/boot-files.ts';

const inputs: ImageInputs = FIXTURE_IMAGE_INPUTS;

test('equal inputs plan equal layers; names carry the inputs hash', (t) => {
  const a = planImageBuild(inputs, '/cache/layers');
  const b = planImageBuild({ ...inputs }, '/cache/layers');
  t.deepEqual(a, b);
  t.is(a.rootfs.dir, `/cache/layers/rootfs-${a.rootfs.hash.slice(0, 16)}`);
  t.regex(a.rootUuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  t.regex(a.espVolumeId, /^[0-9A-F]{8}$/);
});

test('a changed mirror state rebuilds the OS and disk layers; a new epoch too', (t) => {
  const a = planImageBuild(inputs, '/c');
  const b = planImageBuild({ ...inputs, releaseHashes: { ...inputs.releaseHashes, 'trixie-security': 'd'.repeat(64) } }, '/c');
  t.not(a.rootfs.hash, b.rootfs.hash);
  t.not(a.disk.hash, b.disk.hash);
  t.not(planImageBuild({ ...inputs, sourceDateEpoch: 1 }, '/c').rootfs.hash, a.rootfs.hash);
});

test('the tools layer depends on what it installs and the suite it installs from, not on a security or updates push', (t) => {
  const a = planImageBuild(inputs, '/c');
  const securityPush = planImageBuild({ ...inputs, releaseHashes: { ...inputs.releaseHashes, 'trixie-security': 'd'.repeat(64), 'trixie-updates': 'e'.repeat(64) }, releaseDates: { ...inputs.releaseDates, 'trixie-security': 1764100000 }, sourceDateEpoch: 1764100000 }, '/c');
  t.is(securityPush.tools.hash, a.tools.hash);
  t.not(securityPush.rootfs.hash, a.rootfs.hash, 'the OS layer does take the security push');
  t.deepEqual(a.tools.mmdebstrap!.argv.filter((x) => x.startsWith('deb ')), ['deb http://deb.debian.org/debian trixie main'], 'apt sees only the base suite');
  t.not(planImageBuild({ ...inputs, releaseHashes: { ...inputs.releaseHashes, trixie: 'f'.repeat(64) } }, '/c').tools.hash, a.tools.hash, 'a point release moves it');
  t.not(planImageBuild(inputs, '/c', undefined, { ...IMAGE_RECIPE, toolsPackages: [...IMAGE_RECIPE.toolsPackages, 'xz-utils'] }).tools.hash, a.tools.hash, 'so does its package set');
});

test('what is hashed is what is run: one mmdebstrap flag, one hook byte or one file byte changes the layer hash', (t) => {
  const a = planImageBuild(inputs, '/c');
  const flag = planImageBuild(inputs, '/c', undefined, { ...IMAGE_RECIPE, dpkgExcludes: IMAGE_RECIPE.dpkgExcludes.slice(1) });
  const hook = planImageBuild(inputs, '/c', undefined, { ...IMAGE_RECIPE, hygieneHook: `${IMAGE_RECIPE.hygieneHook} ` });
  const file = planImageBuild(inputs, '/c', undefined, { ...IMAGE_RECIPE, earlyFiles: { 'etc/initramfs-tools/conf.d/labsmith.conf': { content: 'FSTYPE=ext4 \n', mode: 0o644 } } });
  for (const [what, b] of [['a flag', flag], ['a hook byte', hook], ['a file byte', file]] as const) {
    t.not(b.rootfs.hash, a.rootfs.hash, what);
    t.not(b.disk.hash, a.disk.hash, `${what} reaches the disk`);
    t.is(b.tools.hash, a.tools.hash, `${what} of the OS layer leaves the tools layer`);
  }
  t.not(flag.rootfs.mmdebstrap!.argv.join('\n'), a.rootfs.mmdebstrap!.argv.join('\n'));
  // The layer's recorded inputs are its whole run: argv, environment, files and placed inputs.
  t.deepEqual((a.rootfs.inputs as { mmdebstrap: unknown }).mmdebstrap, a.rootfs.mmdebstrap);
  t.is(a.rootfs.mmdebstrap!.files['hooks/hygiene.sh']!.content, IMAGE_RECIPE.hygieneHook);
  t.truthy(a.rootfs.mmdebstrap!.argv.find((x) => x === `--customize-hook=${BUILD_DIR}/hooks/hygiene.sh`));
  t.regex(a.rootfs.mmdebstrap!.files['hooks/mirror-state']!.content, new RegExp(`^trixie deb\\.debian\\.org_debian_dists_trixie_InRelease ${'a'.repeat(64)}$`, 'm'));
});

test('sources include updates and security, except for sid', (t) => {
  t.deepEqual(aptSources(inputs).map((s) => s.suite), ['trixie', 'trixie-updates', 'trixie-security']);
  t.deepEqual(aptSources({ ...inputs, suite: 'sid' }).map((s) => s.suite), ['sid', 'sid-updates']);
});

test('mmdebstrap arguments (golden)', (t) => {
  const plan = planImageBuild(inputs, '/c');
  const args = renderMmdebstrapArgs({ variant: 'apt', format: 'tar', packages: ['a', 'b'], sources: plan.sources, output: '/out/rootfs.tar', dpkgOptions: ['path-exclude=/usr/share/doc/*'], syncInEarly: '/h/early', syncInLate: '/h/late', customizeHooks: ['/h/x.sh'] });
  t.deepEqual(args, [
    '--mode=root',
    '--variant=apt',
    '--format=tar',
    '--architectures=amd64',
    '--include=a,b',
    '--aptopt=APT::Install-Recommends "false"',
    '--dpkgopt=path-exclude=/usr/share/doc/*',
    '--setup-hook=sync-in /h/early /',
    '--customize-hook=sync-in /h/late /',
    '--customize-hook=/h/x.sh',
    'trixie',
    '/out/rootfs.tar',
    'deb http://deb.debian.org/debian trixie main',
    'deb http://deb.debian.org/debian trixie-updates main',
    'deb http://deb.debian.org/debian-security trixie-security main',
  ]);
});

test('the OS layer has what the cluster needs from Debian', (t) => {
  for (const p of ['containerd', 'docker.io', 'docker-cli', 'runc', 'apparmor', 'cloud-init', 'openssh-server', 'linux-image-cloud-amd64', 'rsyslog', 'nftables']) {
    t.true((OS_PACKAGES as readonly string[]).includes(p), p);
  }
});

test('disk layout: ESP at 1 MiB, root after it, backup GPT room at the end', (t) => {
  const layout = planDiskLayout(500 * 2 ** 20);
  t.deepEqual(layout, { espStartMiB: 1, espSizeMiB: 64, rootStartMiB: 65, rootSizeMiB: planRootSizeMiB(500 * 2 ** 20), totalMiB: 65 + planRootSizeMiB(500 * 2 ** 20) + 1 });
  t.is(planRootSizeMiB(500 * 2 ** 20) % 64, 0);
  t.true(planRootSizeMiB(500 * 2 ** 20) >= 500 * 1.25 + 256);
});

test('sgdisk arguments pin every GUID (golden)', (t) => {
  const plan = planImageBuild(inputs, '/c');
  const args = renderSgdiskArgs(plan, planDiskLayout(2 ** 30), '/w/disk.raw');
  t.deepEqual(args.slice(0, 3), ['--zap-all', `--disk-guid=${plan.diskGuid}`, '--new=1:2048:+64M']);
  t.true(args.includes(`--partition-guid=2:${plan.rootPartGuid}`));
  t.true(args.includes('--typecode=2:8304'));
  t.is(args.at(-1), '/w/disk.raw');
});

test('fstab and GRUB name the filesystems by their fixed ids', (t) => {
  const files = renderLateRootfsFiles({ rootUuid: '11111111-2222-4333-8444-555555555555', espVolumeId: '1A2B3C4D' });
  t.is(files['etc/fstab']!.content, 'UUID=11111111-2222-4333-8444-555555555555 / ext4 defaults,errors=remount-ro 0 1\nUUID=1A2B-3C4D /boot/efi vfat umask=0077,nofail,x-systemd.automount,x-systemd.device-timeout=10s 0 2\n');
  t.regex(files['boot/grub/grub.cfg']!.content, /linux \/vmlinuz root=UUID=11111111-2222-4333-8444-555555555555 ro console=tty0 console=ttyS0,115200n8/);
  t.is(files['etc/hostname']!.content, 'localhost\n');
  t.is(fatUuid('1A2B3C4D'), '1A2B-3C4D');
  t.regex(renderEspGrubConfig('u-u-i-d'), /\nsearch --no-floppy --fs-uuid --set=root u-u-i-d\nset prefix=\(\$root\)\/boot\/grub\nconfigfile/);
});

test('the Kubernetes layer sits on the same OS inputs, changes with any locked package or image, and is what the disk is made from', (t) => {
  const k: KubernetesLayerInputs = {
    minor: '1.37',
    repository: 'https://pkgs.k8s.io/core:/stable:/v1.37/deb/',
    keyringSha256: 'a'.repeat(64),
    keyFingerprint: 'F'.repeat(40),
    packages: { kubelet: { version: '1.37.2-1.1', sha256: 'b'.repeat(64) } },
    images: { 'registry.k8s.io/pause:3.10.1': `sha256:${'c'.repeat(64)}` },
  };
  const os = planImageBuild(inputs, '/layers');
  const kube = planImageBuild(inputs, '/layers', k);
  t.is(os.kubernetes, undefined);
  t.is(bootLayer(os), os.rootfs);
  t.is(kube.rootfs.hash, os.rootfs.hash, 'the OS layer is shared: an OS-only build caches it for the full one');
  t.is(bootLayer(kube), kube.kubernetes!);
  t.not(kube.disk.hash, os.disk.hash);
  const newKubelet = planImageBuild(inputs, '/layers', { ...k, packages: { kubelet: { version: '1.37.3-1.1', sha256: 'd'.repeat(64) } } });
  const newImage = planImageBuild(inputs, '/layers', { ...k, images: { 'registry.k8s.io/pause:3.10.1': `sha256:${'e'.repeat(64)}` } });
  t.not(newKubelet.kubernetes!.hash, kube.kubernetes!.hash);
  t.not(newImage.kubernetes!.hash, kube.kubernetes!.hash);
  t.not(newImage.disk.hash, kube.disk.hash);

  // The local .deb files are staged under the chroot's /tmp (their mount points stay behind otherwise), the rest in the build directory.
  t.deepEqual(kube.kubernetes!.mmdebstrap!.argv.filter((a) => a.startsWith('--include=/')), [`--include=${STAGING_DIR}/kubelet_1.37.2-1.1_amd64.deb`]);
  t.true(STAGING_DIR.startsWith('/tmp/'));
  t.deepEqual(Object.values(kube.kubernetes!.mmdebstrap!.inputs).map((i) => i.kind).sort(), ['deb', 'image', 'keyring']);

  const files = renderKubernetesRootfsFiles(k);
  t.is(files[KUBERNETES_GUEST_PATHS.aptSource]!.content, 'Types: deb\nURIs: https://pkgs.k8s.io/core:/stable:/v1.37/deb/\nSuites: /\nSigned-By: /etc/apt/keyrings/kubernetes-apt-keyring.gpg\n');
  t.is(files[KUBERNETES_GUEST_PATHS.imageList]!.content, 'registry.k8s.io/pause:3.10.1\n');
  t.regex(renderKubernetesHook(), /apt-mark hold kubelet kubeadm kubectl cri-tools kubernetes-cni\n/);
  t.regex(renderKubernetesHook(), /systemctl enable kubelet\.service labsmith-import-images\.service/);
});

test('local .deb files each get their own --include and are mounted into the chroot for dpkg', (t) => {
  const args = renderMmdebstrapArgs({ variant: 'apt', format: 'tar', packages: ['systemd', '/cache/files/kubelet_1.37.2-1.1_amd64.deb', 'curl', '/cache/files/kubeadm_1.37.2-1.1_amd64.deb'], sources: aptSources(inputs), output: '/out/rootfs.tar' });
  t.deepEqual(args.filter((a) => a.startsWith('--include=')), ['--include=systemd,curl', '--include=/cache/files/kubelet_1.37.2-1.1_amd64.deb', '--include=/cache/files/kubeadm_1.37.2-1.1_amd64.deb']);
  t.true(args.includes('--hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount'), 'dpkg in the chroot needs the files at the same path');
  t.false(renderMmdebstrapArgs({ variant: 'apt', format: 'tar', packages: ['systemd'], sources: aptSources(inputs), output: '/o' }).some((a) => a.startsWith('--hook-dir')));
});
