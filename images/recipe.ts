/**
 * What goes into the image, as data. `planImageBuild` turns the recipe and the mirror's
 * state into content-addressed layers: a layer's name carries the hash of its inputs, so
 * unchanged inputs are a cache hit and any change rebuilds that layer and those above it.
 */
import { join } from 'node:path';
import { hashInputs, uuidFromSeed } from '../core/hash.ts';
import { renderKubernetesHook, renderKubernetesRootfsFiles } from './kubernetes/rootfs-files.ts';
import { renderConfigureHook, renderEarlyRootfsFiles, renderEspGrubConfig, renderHygieneHook, renderLateRootfsFiles } from './boot-files.ts';

/**
 * Bumped when a layer's build code changes in a way its inputs do not capture (rendered
 * files and hooks are inputs already). The tools layer depends on its packages only.
 */
export const ROOTFS_RECIPE_VERSION = 2;
export const DISK_RECIPE_VERSION = 2;
export const KUBERNETES_RECIPE_VERSION = 1;

/** The OS layer: a bootable Debian with what the cluster needs from Debian itself. */
export const OS_PACKAGES = [
  'linux-image-cloud-amd64',
  'initramfs-tools',
  'systemd',
  'systemd-sysv',
  'systemd-resolved',
  'udev',
  'dbus',
  'cloud-init',
  'cloud-guest-utils',
  'fdisk',
  'e2fsprogs',
  'openssh-server',
  'sudo',
  'locales',
  'containerd',
  'docker.io',
  'runc',
  'apparmor',
  'iptables',
  'nftables',
  'iproute2',
  'conntrack',
  'ethtool',
  'socat',
  'rsyslog',
  'curl',
  'ca-certificates',
  'openssl',
  'python3',
  'netbase',
  'less',
] as const;

/** The build environment: pinned disk tools from the same suite, so the disk does not depend on the host's versions. */
export const TOOLS_PACKAGES = [
  'e2fsprogs',
  'libarchive13t64',
  'dosfstools',
  'mtools',
  'gdisk',
  'grub-efi-amd64-bin',
  'qemu-utils',
] as const;

/** GRUB modules built into the EFI binary (no module loading from disk). */
export const GRUB_MODULES = [
  'part_gpt', 'fat', 'ext2', 'normal', 'linux', 'search', 'search_fs_uuid', 'configfile',
  'echo', 'gzio', 'all_video', 'efi_gop', 'test', 'serial', 'terminal', 'sleep',
] as const;

/** Documentation, manuals and translations are dropped (copyright files stay). */
export const DPKG_EXCLUDES = [
  'path-exclude=/usr/share/doc/*',
  'path-include=/usr/share/doc/*/copyright',
  'path-exclude=/usr/share/man/*',
  'path-exclude=/usr/share/info/*',
  'path-exclude=/usr/share/locale/*',
  'path-include=/usr/share/locale/locale.alias',
  'path-exclude=/usr/share/lintian/*',
  // ~100 desktop-application profiles cost ~30 s of boot under emulation and confine
  // nothing this server runs; the abstractions stay for Docker's generated profile.
  'path-exclude=/etc/apparmor.d/*',
  'path-include=/etc/apparmor.d/abstractions/*',
  'path-include=/etc/apparmor.d/tunables/*',
  'path-include=/etc/apparmor.d/local/*',
] as const;

export const ESP_SIZE_MIB = 64;

export interface AptSource {
  uri: string;
  suite: string;
  components: string[];
}

export interface ImageInputs {
  suite: string;
  mirror: string;
  securityMirror: string;
  architecture: 'amd64';
  /** sha256 of each suite's InRelease: the mirror's state the build saw. */
  releaseHashes: Record<string, string>;
  sourceDateEpoch: number;
}

/** What the Kubernetes layer adds, as locked: packages and image archives by checksum and digest. */
export interface KubernetesLayerInputs {
  minor: string;
  repository: string;
  keyringSha256: string;
  packages: Record<string, { version: string; sha256: string }>;
  images: Record<string, string>;
}

export interface LayerPlan {
  name: 'tools' | 'rootfs' | 'kubernetes' | 'disk';
  hash: string;
  /** `<name>-<first 16 hex of hash>` under the cache's layers directory. */
  dir: string;
  inputs: unknown;
}

export interface ImagePlan {
  tools: LayerPlan;
  /** The OS layer: Debian with what the cluster needs from Debian. */
  rootfs: LayerPlan;
  /** The OS layer's packages plus the locked Kubernetes packages and image archives (absent for an OS-only image). */
  kubernetes?: LayerPlan;
  disk: LayerPlan;
  rootUuid: string;
  espVolumeId: string;
  diskGuid: string;
  espPartGuid: string;
  rootPartGuid: string;
  sources: AptSource[];
  sourceDateEpoch: number;
}

export function aptSources(inputs: Pick<ImageInputs, 'suite' | 'mirror' | 'securityMirror'>): AptSource[] {
  const components = ['main'];
  const sources: AptSource[] = [
    { uri: inputs.mirror, suite: inputs.suite, components },
    { uri: inputs.mirror, suite: `${inputs.suite}-updates`, components },
  ];
  // Rolling suites have no security archive.
  if (!['sid', 'unstable', 'experimental'].includes(inputs.suite)) {
    sources.push({ uri: inputs.securityMirror, suite: `${inputs.suite}-security`, components });
  }
  return sources;
}

/** The root filesystem the disk is made from. */
export function bootLayer(plan: Pick<ImagePlan, 'rootfs' | 'kubernetes'>): LayerPlan {
  return plan.kubernetes ?? plan.rootfs;
}

export function planImageBuild(inputs: ImageInputs, layersDir: string, kubernetes?: KubernetesLayerInputs): ImagePlan {
  const sources = aptSources(inputs);
  const base = { architecture: inputs.architecture, sources, releaseHashes: inputs.releaseHashes, sourceDateEpoch: inputs.sourceDateEpoch };
  const toolsInputs = { ...base, packages: TOOLS_PACKAGES };
  const toolsHash = hashInputs(toolsInputs);
  // Filesystem ids are named in the root filesystem (fstab, grub.cfg), so they derive from its inputs.
  const rootUuid = uuidFromSeed(`root:${hashInputs(base)}`);
  const espVolumeId = uuidFromSeed(`esp:${hashInputs(base)}`).slice(0, 8).toUpperCase();
  // The rendered files and hooks are inputs too: changing a renderer rebuilds the layer.
  const rootfsInputs = {
    ...base,
    recipe: ROOTFS_RECIPE_VERSION,
    packages: OS_PACKAGES,
    excludes: DPKG_EXCLUDES,
    files: { early: renderEarlyRootfsFiles(), late: renderLateRootfsFiles({ rootUuid, espVolumeId }) },
    hooks: [renderConfigureHook(), renderHygieneHook()],
  };
  const rootfsHash = hashInputs(rootfsInputs);
  const kubernetesInputs = kubernetes && { rootfs: rootfsInputs, recipe: KUBERNETES_RECIPE_VERSION, kubernetes, files: renderKubernetesRootfsFiles(kubernetes), hooks: [renderKubernetesHook()] };
  const kubernetesHash = kubernetesInputs && hashInputs(kubernetesInputs);
  const diskInputs = { recipe: DISK_RECIPE_VERSION, rootfs: kubernetesHash ?? rootfsHash, tools: toolsHash, esp: ESP_SIZE_MIB, grub: GRUB_MODULES, espConfig: renderEspGrubConfig(rootUuid) };
  const diskHash = hashInputs(diskInputs);
  const layer = (name: LayerPlan['name'], hash: string, layerInputs: unknown): LayerPlan => ({
    name,
    hash,
    dir: join(layersDir, `${name}-${hash.slice(0, 16)}`),
    inputs: layerInputs,
  });
  return {
    tools: layer('tools', toolsHash, toolsInputs),
    rootfs: layer('rootfs', rootfsHash, rootfsInputs),
    ...(kubernetesHash ? { kubernetes: layer('kubernetes', kubernetesHash, kubernetesInputs) } : {}),
    disk: layer('disk', diskHash, diskInputs),
    rootUuid,
    espVolumeId,
    diskGuid: uuidFromSeed(`disk:${diskHash}`),
    espPartGuid: uuidFromSeed(`esp-part:${diskHash}`),
    rootPartGuid: uuidFromSeed(`root-part:${diskHash}`),
    sources,
    sourceDateEpoch: inputs.sourceDateEpoch,
  };
}

/** Root filesystem size: the tree plus a quarter plus 256 MiB headroom, rounded up to 64 MiB. Grown on first boot. */
export function planRootSizeMiB(tarBytes: number): number {
  const mib = Math.ceil((tarBytes * 1.25) / 2 ** 20) + 256;
  return Math.ceil(mib / 64) * 64;
}
