/**
 * What goes into the image, as data. `planImageBuild` turns the recipe and the locked mirror
 * state into content-addressed layers, once, before anything is built: each layer's plan holds
 * the exact mmdebstrap argv, environment, hooks, files and locked inputs it will run with, and its
 * hash is taken over that plan, so any change to a flag, hook or file rebuilds that layer and
 * those above it, with no version constant to bump. The build executes the plan as it is.
 */
import { join } from 'node:path';
import { hashInputs, uuidFromSeed } from '../core/hash.ts';
import { readFileSync } from 'node:fs';
import { IMAGE_FILES, KUBERNETES_GUEST_PATHS, STAGED_UPGRADE_PATHS } from '../core/paths.ts';
import { imageArchiveName } from './artifacts/names.ts';
import type { KubernetesLayerInputs } from './kubernetes/layer-inputs.ts';
import { renderKubernetesHook, renderKubernetesRootfsFiles } from './kubernetes/rootfs-files.ts';
import { renderConfigureHook, renderEarlyRootfsFiles, renderEspGrubConfig, renderHygieneHook, renderLateRootfsFiles, type FileSpec } from './boot-files.ts';
import { diskCommandsFingerprint, type DiskIds } from './disk-plan.ts';
import { MIRROR_CHECK_PARAMS, MIRROR_CHECK_SCRIPT, renderMirrorCheckParams } from './mirror-check.ts';
import { BUILD_DIR, renderMmdebstrapArgs, STAGING_DIR, type AptSource, type MmdebstrapRun, type PlannedInput } from './mmdebstrap.ts';

export type { AptSource } from './mmdebstrap.ts';
export type { KubernetesLayerInputs } from './kubernetes/layer-inputs.ts';
export { ESP_SIZE_MIB, GRUB_MODULES, planRootSizeMiB } from './disk-plan.ts';

/** Indexes the staged upgrade .debs as a flat apt repository (a real file: images/hooks/index-staged-upgrade.sh). */
export const STAGED_INDEX_HOOK = readFileSync(new URL('./hooks/index-staged-upgrade.sh', import.meta.url), 'utf8');

/** The OS layer: a bootable Debian with what the cluster needs from Debian itself. */
export const OS_PACKAGES = [
  'linux-image-cloud-amd64',
  'initramfs-tools',
  // initramfs-tools is set to zstd but falls back to gzip without it: zstd unpacks several times
  // faster, and the kernel unpacks the initramfs at every boot (under emulation, seconds).
  'zstd',
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
  // trixie splits the docker command out of docker.io (which only recommends it): the lab user builds images with it.
  'docker-cli',
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
  // abstractions/base starts with `abi <abi/4.0>`: without abi/ Docker's profile does not load and no container starts.
  'path-include=/etc/apparmor.d/abi/*',
  'path-include=/etc/apparmor.d/tunables/*',
  'path-include=/etc/apparmor.d/local/*',
] as const;

/** The recipe's own parts (constants and rendered hooks): arguments of the plan, so a test can change one. */
export interface ImageRecipe {
  osPackages: readonly string[];
  toolsPackages: readonly string[];
  dpkgExcludes: readonly string[];
  earlyFiles: Record<string, FileSpec>;
  configureHook: string;
  hygieneHook: string;
}

export const IMAGE_RECIPE: ImageRecipe = {
  osPackages: OS_PACKAGES,
  toolsPackages: TOOLS_PACKAGES,
  dpkgExcludes: DPKG_EXCLUDES,
  earlyFiles: renderEarlyRootfsFiles(),
  configureHook: renderConfigureHook(),
  hygieneHook: renderHygieneHook(),
};

export interface ImageInputs {
  suite: string;
  mirror: string;
  securityMirror: string;
  architecture: 'amd64';
  /** sha256 of each suite's InRelease as locked: the mirror state apt must see during the build (checked from inside it). */
  releaseHashes: Record<string, string>;
  /** Each suite's Release `Date:` in seconds. */
  releaseDates: Record<string, number>;
  sourceDateEpoch: number;
}

export interface LayerPlan {
  name: 'tools' | 'rootfs' | 'kubernetes' | 'disk';
  hash: string;
  /** `<name>-<first 16 hex of hash>` under the cache's layers directory. */
  dir: string;
  /** Everything the hash is taken over (written into the layer's marker). */
  inputs: unknown;
  /** The run that builds it, as hashed (the disk layer's commands are in disk-plan.ts). */
  mmdebstrap?: MmdebstrapRun;
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

/** A rendered hook file in a run's hooks directory. */
const hookFile = (content: string): FileSpec => ({ content, mode: 0o755 });

/** Files under `dir` in the build directory, from a rendered tree. */
function under(dir: string, files: Record<string, FileSpec>): Record<string, FileSpec> {
  return Object.fromEntries(Object.entries(files).map(([path, spec]) => [`${dir}/${path}`, spec]));
}

interface RootfsRunSpec {
  recipe: ImageRecipe;
  packages: readonly string[];
  sources: AptSource[];
  releaseHashes: Record<string, string>;
  sourceDateEpoch: number;
  early: Record<string, FileSpec>;
  late: Record<string, FileSpec>;
  /** Locked inputs placed under the late tree or beside it. */
  inputs?: Record<string, PlannedInput>;
  /** Customize hooks after configure.sh; hygiene.sh runs last, after every layer's own. */
  hooks?: Record<string, string>;
}

/** The mirror check every run starts with: the InRelease files apt downloaded must be the planned ones. */
function mirrorCheckFiles(sources: AptSource[], releaseHashes: Record<string, string>): Record<string, FileSpec> {
  return {
    'hooks/check-mirror-state.sh': hookFile(MIRROR_CHECK_SCRIPT),
    [`hooks/${MIRROR_CHECK_PARAMS}`]: { content: renderMirrorCheckParams(sources, releaseHashes), mode: 0o644 },
  };
}

/** One mmdebstrap run into `<build>/rootfs.tar` with the recipe's files and hooks, plus a layer's own. */
function planRootfsRun(spec: RootfsRunSpec): MmdebstrapRun {
  const b = (p: string) => `${BUILD_DIR}/${p}`;
  const hooks: Record<string, string> = { 'configure.sh': spec.recipe.configureHook, ...spec.hooks, 'hygiene.sh': spec.recipe.hygieneHook };
  return {
    argv: renderMmdebstrapArgs({
      variant: 'apt',
      format: 'tar',
      packages: spec.packages,
      sources: spec.sources,
      output: b(IMAGE_FILES.rootfsTar),
      dpkgOptions: spec.recipe.dpkgExcludes,
      syncInEarly: b('hooks/early'),
      syncInLate: b('hooks/late'),
      essentialHooks: [b('hooks/check-mirror-state.sh')],
      customizeHooks: Object.keys(hooks).map((name) => b(`hooks/${name}`)),
    }),
    env: { SOURCE_DATE_EPOCH: String(spec.sourceDateEpoch) },
    files: {
      ...under('hooks/early', spec.early),
      ...under('hooks/late', spec.late),
      ...Object.fromEntries(Object.entries(hooks).map(([name, content]) => [`hooks/${name}`, hookFile(content)])),
      ...mirrorCheckFiles(spec.sources, spec.releaseHashes),
    },
    inputs: spec.inputs ?? {},
    scratch: ['hooks'],
  };
}

/** The locked Kubernetes inputs as placed into the layer's build directory. */
function kubernetesInputs(k: KubernetesLayerInputs): Record<string, PlannedInput> {
  const inputs: Record<string, PlannedInput> = {
    [`hooks/late/${KUBERNETES_GUEST_PATHS.keyring}`]: { kind: 'keyring', sha256: k.keyringSha256, fingerprint: k.keyFingerprint },
  };
  for (const [name, p] of Object.entries(k.packages).sort(([a], [b]) => (a < b ? -1 : 1))) inputs[`${STAGING_DIR}/${kubernetesDebName(name, p.version)}`] = { kind: 'deb', name, version: p.version, sha256: p.sha256 };
  for (const [ref, digest] of Object.entries(k.images).sort(([a], [b]) => (a < b ? -1 : 1))) inputs[`hooks/late/${KUBERNETES_GUEST_PATHS.imagesDir}/${imageArchiveName(ref)}`] = { kind: 'image', ref, digest };
  if (k.containerd2) inputs[`${STAGING_DIR}/${kubernetesDebName(k.containerd2.name, k.containerd2.version)}`] = { kind: 'deb', name: k.containerd2.name, version: k.containerd2.version, sha256: k.containerd2.sha256 };
  // Staged, not installed: under the late tree, never on mmdebstrap's package list.
  const staged = k.stagedUpgrade;
  if (staged) {
    for (const [name, p] of Object.entries(staged.packages).sort(([a], [b]) => (a < b ? -1 : 1))) {
      inputs[`hooks/late/${STAGED_UPGRADE_PATHS.debs(staged.minor)}/${kubernetesDebName(name, p.version)}`] = { kind: 'deb', name, version: p.version, sha256: p.sha256, key: stagedInputKey(name) };
    }
    for (const [ref, digest] of Object.entries(staged.images).sort(([a], [b]) => (a < b ? -1 : 1))) {
      inputs[`hooks/late/${STAGED_UPGRADE_PATHS.images(staged.minor)}/${imageArchiveName(ref)}`] = { kind: 'image', ref, digest, key: stagedInputKey(ref) };
    }
  }
  return inputs;
}

/** The resolved-inputs key of a staged upgrade input (a target kubeadm is not the image's kubeadm). */
export function stagedInputKey(nameOrRef: string): string {
  return `target/${nameOrRef}`;
}

/** The OS packages with the suite's containerd replaced by a pinned .deb (kubernetes.containerd: "2"). */
function kubernetesPackages(osPackages: readonly string[], inputs: Record<string, PlannedInput>, containerd2?: KubernetesLayerInputs['containerd2']): string[] {
  const debs = Object.entries(inputs).filter(([p, i]) => p.startsWith(`${STAGING_DIR}/`) && i.kind === 'deb').map(([p]) => p);
  return [...osPackages.filter((p) => !(containerd2 && p === containerd2.name)), ...debs];
}

export function kubernetesDebName(name: string, version: string): string {
  return `${name}_${version.replace(/^\d+:/, '')}_amd64.deb`;
}

/**
 * The whole build, planned once from the locked state (changesets' assembleReleasePlan is the
 * model: every input is an argument, nothing is read here).
 */
export function planImageBuild(inputs: ImageInputs, layersDir: string, kubernetes?: KubernetesLayerInputs, recipe: ImageRecipe = IMAGE_RECIPE): ImagePlan {
  const sources = aptSources(inputs);
  const { architecture, releaseHashes, sourceDateEpoch } = inputs;
  const layer = (name: LayerPlan['name'], layerInputs: object, mmdebstrap?: MmdebstrapRun): LayerPlan => {
    const hash = hashInputs(layerInputs);
    return { name, hash, dir: join(layersDir, `${name}-${hash.slice(0, 16)}`), inputs: layerInputs, ...(mmdebstrap ? { mmdebstrap } : {}) };
  };

  // The tools layer needs only the base suite: what it installs, not every security push.
  const toolsSources = sources.slice(0, 1);
  const toolsRun: MmdebstrapRun = {
    argv: renderMmdebstrapArgs({ variant: 'apt', format: 'directory', packages: recipe.toolsPackages, sources: toolsSources, output: `${BUILD_DIR}/root`, essentialHooks: [`${BUILD_DIR}/hooks/check-mirror-state.sh`] }),
    env: { SOURCE_DATE_EPOCH: String(inputs.releaseDates[inputs.suite] ?? sourceDateEpoch) },
    files: mirrorCheckFiles(toolsSources, releaseHashes),
    inputs: {},
    scratch: ['hooks'],
  };
  const tools = layer('tools', { architecture, mmdebstrap: toolsRun }, toolsRun);

  // Filesystem ids are named in the root filesystem (fstab, grub.cfg), so they derive from its mirror state.
  const base = { architecture, sources, releaseHashes, sourceDateEpoch };
  const rootUuid = uuidFromSeed(`root:${hashInputs(base)}`);
  const espVolumeId = uuidFromSeed(`esp:${hashInputs(base)}`).slice(0, 8).toUpperCase();
  const osSpec: RootfsRunSpec = { recipe, packages: recipe.osPackages, sources, releaseHashes, sourceDateEpoch, early: recipe.earlyFiles, late: renderLateRootfsFiles({ rootUuid, espVolumeId }) };
  const rootfsRun = planRootfsRun(osSpec);
  const rootfs = layer('rootfs', { architecture, mmdebstrap: rootfsRun }, rootfsRun);

  let kube: LayerPlan | undefined;
  if (kubernetes) {
    const inputsPlaced = kubernetesInputs(kubernetes);
    const kubeRun = planRootfsRun({
      ...osSpec,
      packages: kubernetesPackages(recipe.osPackages, inputsPlaced, kubernetes.containerd2),
      late: { ...osSpec.late, ...renderKubernetesRootfsFiles(kubernetes) },
      inputs: inputsPlaced,
      hooks: { 'kubernetes.sh': renderKubernetesHook(), ...(kubernetes.stagedUpgrade ? { 'index-staged-upgrade.sh': STAGED_INDEX_HOOK } : {}) },
    });
    // One mmdebstrap run of its own (not on top of the OS layer's tarball), so the OS layer is only shared, never modified.
    kube = layer('kubernetes', { architecture, mmdebstrap: kubeRun, kubernetes }, kubeRun);
  }
  const boot = kube ?? rootfs;

  const diskSeed = hashInputs({ rootfs: boot.hash, tools: tools.hash });
  const ids: DiskIds = {
    rootUuid,
    espVolumeId,
    diskGuid: uuidFromSeed(`disk:${diskSeed}`),
    espPartGuid: uuidFromSeed(`esp-part:${diskSeed}`),
    rootPartGuid: uuidFromSeed(`root-part:${diskSeed}`),
    sourceDateEpoch,
  };
  const disk = layer('disk', { rootfs: boot.hash, tools: tools.hash, commands: diskCommandsFingerprint(ids), espConfig: renderEspGrubConfig(rootUuid) });
  return {
    tools,
    rootfs,
    ...(kube ? { kubernetes: kube } : {}),
    disk,
    ...ids,
    sources,
    sourceDateEpoch,
  };
}
