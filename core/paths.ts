/** Where things live on the host, and file names used inside images and labs: one place. */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function cacheRoot(env = process.env): string {
  return env.LABSMITH_CACHE_DIR ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'labsmith');
}

export function stateRoot(env = process.env): string {
  return env.LABSMITH_STATE_DIR ?? join(env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state'), 'labsmith');
}

/** Debian's archive keyring on the host (debian-archive-keyring): what apt trusts for the live mirror. */
export const DEBIAN_ARCHIVE_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

/** Files in a built image's directory. */
export const IMAGE_FILES = {
  disk: 'disk.qcow2',
  compressed: 'disk-compressed.qcow2',
  sums: 'SHA256SUMS',
  /** Size, mtime and inode of the disk files when the layer was made (a cheap check before reuse). */
  stamp: 'STAMP.json',
  manifest: 'manifest.json',
  rootfsTar: 'rootfs.tar',
  complete: '.complete',
  /** The root filesystem's kernel and initramfs, copied beside the disk for a lab's direct kernel boot. */
  kernel: 'vmlinuz',
  initrd: 'initrd.img',
} as const;

/** Files in a lab's state directory. */
export const LAB_FILES = {
  lock: 'lab.lock',
  overlay: 'overlay.qcow2',
  seed: 'seed.iso',
  seedDir: 'seed',
  sshKey: 'id_ed25519',
  hostKey: 'ssh_host_ed25519_key',
  knownHosts: 'known_hosts',
  serialLog: 'serial.log',
  qemuPid: 'qemu.pid',
  qemuLog: 'qemu.log',
  monitor: 'qemu-monitor.sock',
  varsFd: 'OVMF_VARS.fd',
  state: 'state.json',
  caKey: 'ca.key',
  caCert: 'ca.crt',
  report: 'report',
  kubeconfig: 'kubeconfig',
} as const;

/** Paths inside the guest. */
export const GUEST_PATHS = {
  placeholderScript: '/usr/local/lib/labsmith/placeholder-ingress.py',
  placeholderUnit: '/etc/systemd/system/labsmith-placeholder-ingress.service',
  tlsDir: '/etc/labsmith/tls',
  containerdConfig: '/etc/containerd/config.toml',
  /** The kubelet's own registry keyring (root, 0600): credentials for the images it pulls. */
  kubeletRegistryAuth: '/var/lib/kubelet/config.json',
} as const;

/** The first-boot bootstrap's files in the guest (absolute). */
export const BOOTSTRAP_PATHS = {
  dir: '/etc/labsmith/bootstrap',
  kubeadmConfig: '/etc/labsmith/bootstrap/kubeadm.yaml',
  script: '/usr/local/lib/labsmith/bootstrap.sh',
  dnsProbe: '/usr/local/lib/labsmith/dns-query.py',
  unit: '/etc/systemd/system/labsmith-bootstrap.service',
  stateDir: '/var/lib/labsmith/bootstrap',
  complete: '/var/lib/labsmith/bootstrap/complete',
  adminKubeconfig: '/etc/kubernetes/admin.conf',
} as const;

/** What the Kubernetes layer adds to the root filesystem (relative to it: they go into the layer's tree). */
export const KUBERNETES_GUEST_PATHS = {
  aptSource: 'etc/apt/sources.list.d/kubernetes.sources',
  keyring: 'etc/apt/keyrings/kubernetes-apt-keyring.gpg',
  imagesDir: 'var/lib/labsmith/images',
  imageList: 'var/lib/labsmith/images/images.list',
  importScript: 'usr/local/lib/labsmith/import-images.sh',
  importUnit: 'etc/systemd/system/labsmith-import-images.service',
  /** The apt preference that holds containerd 2 (kubernetes.containerd: "2") at its locked version. */
  containerdPreference: 'etc/apt/preferences.d/labsmith-containerd.pref',
} as const;

/**
 * The next minor's payload (`image:build --stage-upgrade 1.38`), staged, not installed, so the
 * rehearsal needs no network: `<dir>/<minor>/debs/*.deb` (a flat apt repository with its
 * Packages index), `<dir>/<minor>/images/*.oci.tar`, `<dir>/<minor>/target.json` (the lock's
 * target section). Relative to the root filesystem.
 */
export const STAGED_UPGRADE_PATHS = {
  dir: 'var/lib/labsmith/upgrade',
  debs: (minor: string) => `var/lib/labsmith/upgrade/${minor}/debs`,
  images: (minor: string) => `var/lib/labsmith/upgrade/${minor}/images`,
  target: (minor: string) => `var/lib/labsmith/upgrade/${minor}/target.json`,
} as const;

/** The rehearsal's files in the guest (absolute). */
export const UPGRADE_GUEST_PATHS = {
  dir: '/etc/labsmith/upgrade',
  config: '/etc/labsmith/upgrade/kubeadm-upgrade.yaml',
  params: '/etc/labsmith/upgrade/upgrade-control-plane.env',
  script: '/usr/local/lib/labsmith/upgrade-control-plane.sh',
  backupDir: '/var/lib/labsmith/upgrade-backup',
  canary: '.labsmith-upgrade-canary',
} as const;

/** The repository's root: guest scripts are read from it at render time. */
export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Scripts that run in the guest, as files in the repository (relative to its root), shipped byte for byte. */
export const GUEST_SCRIPT_SOURCES = {
  dir: 'cloud-init/guest',
  bootstrap: 'cloud-init/guest/bootstrap.sh',
  importImages: 'cloud-init/guest/import-images.sh',
  dnsProbe: 'cloud-init/guest/dns-probe.py',
  placeholderIngress: 'cloud-init/guest/placeholder-ingress.py',
  unpackSeedFiles: 'cloud-init/guest/unpack-seed-files.sh',
} as const;

/** The workload apply (lab/workloads/): its guest script in the repository, and the names in the directory it is streamed into. */
export const WORKLOAD_GUEST_FILES = {
  scriptSource: 'lab/workloads/guest/apply-workloads.sh',
  script: 'apply-workloads.sh',
  params: 'params.env',
  sourcesDir: 'sources',
  sourceParams: 'source.env',
  first: 'first.yaml',
  crds: 'crds.txt',
  secrets: 'secrets.yaml',
  objects: 'objects.yaml',
  kustomization: 'kustomization',
} as const;

/** The rendered parameter files (shell-quoted KEY=value lines) the guest scripts read, in the guest (absolute). */
export const GUEST_PARAM_FILES = {
  bootstrap: '/etc/labsmith/bootstrap.env',
  placeholderIngress: '/etc/labsmith/placeholder-ingress.env',
} as const;

/** The image-import script's parameter file in the Kubernetes layer (relative to the root filesystem). */
export const KUBERNETES_IMPORT_PARAMS = 'etc/labsmith/import-images.env';

/** systemd units labsmith puts into images and labs. */
export const GUEST_UNITS = {
  bootstrap: 'labsmith-bootstrap.service',
  importImages: 'labsmith-import-images.service',
  placeholderIngress: 'labsmith-placeholder-ingress.service',
} as const;
