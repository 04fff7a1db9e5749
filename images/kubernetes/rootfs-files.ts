/**
 * What the Kubernetes layer adds to the root filesystem besides the packages (pure): the
 * pkgs.k8s.io apt source (for later upgrades, held until the user moves them), and the first-boot
 * import of the baked image archives into containerd's k8s.io namespace, pinned so image garbage
 * collection keeps them. Importing needs a running containerd, so it runs once at boot, before
 * the kubelet, and remembers what it imported.
 */
import { basename } from 'node:path';
import { GUEST_PATHS, GUEST_UNITS, KUBERNETES_GUEST_PATHS, KUBERNETES_IMPORT_PARAMS, STAGED_UPGRADE_PATHS } from '../../core/paths.ts';
import { renderContainerd2Config } from '../../lab/upgrade/containerd2-config.ts';
import { renderContainerdPreference } from './containerd2.ts';
import { renderParamFile, type GuestParams } from '../../cloud-init/guest-params.ts';
import { guestScript } from '../../cloud-init/guest-scripts.ts';
import { pauseImageOf } from '../../cloud-init/cluster-seed.ts';
import { renderContainerdConfig } from '../../cloud-init/containerd-config.ts';
import type { FileSpec } from '../boot-files.ts';
import type { KubernetesLayerInputs } from './layer-inputs.ts';


export const IMPORT_UNIT = GUEST_UNITS.importImages;
/** The label the CRI plugin reads to keep an image from garbage collection. */
export const PINNED_LABEL = 'io.cri-containerd.pinned=pinned';
export const HELD_PACKAGES = ['kubelet', 'kubeadm', 'kubectl', 'cri-tools', 'kubernetes-cni'] as const;

export function renderKubernetesAptSource(repository: string, keyring = `/${KUBERNETES_GUEST_PATHS.keyring}`): string {
  return `Types: deb\nURIs: ${repository}\nSuites: /\nSigned-By: ${keyring}\n`;
}

/** What the import script reads: where the archives and their list are, and what to pin them with. */
export function importImagesParams(opts: { imagesDir?: string; stateDir?: string; containerdAddress?: string } = {}): GuestParams {
  return {
    IMAGES_DIR: opts.imagesDir ?? `/${KUBERNETES_GUEST_PATHS.imagesDir}`,
    IMAGE_LIST: `${opts.imagesDir ?? `/${KUBERNETES_GUEST_PATHS.imagesDir}`}/${basename(KUBERNETES_GUEST_PATHS.imageList)}`,
    STATE_DIR: opts.stateDir ?? '/var/lib/labsmith/imported',
    CONTAINERD_ADDRESS: opts.containerdAddress ?? '/run/containerd/containerd.sock',
    NAMESPACE: 'k8s.io',
    PINNED_LABEL,
  };
}

/**
 * Imports every archive not imported yet, then pins every image the list names: the repository's
 * cloud-init/guest/import-images.sh, unchanged; its paths are in the parameter file beside it.
 */
export function importImagesScript(): string {
  return guestScript('importImages');
}

export function renderImportImagesParams(opts?: Parameters<typeof importImagesParams>[0]): string {
  return renderParamFile('import-images.sh', importImagesParams(opts));
}

export function renderImportImagesUnit(): string {
  return `[Unit]
Description=labsmith: import the baked container images into containerd
After=containerd.service
Requires=containerd.service
Before=kubelet.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/${KUBERNETES_GUEST_PATHS.importScript} /${KUBERNETES_IMPORT_PARAMS}

[Install]
WantedBy=multi-user.target
`;
}

export function renderImageList(images: Record<string, string>): string {
  return Object.keys(images).sort().map((ref) => `${ref}\n`).join('');
}

/** Files of the Kubernetes layer that are rendered, not copied (the keyring and archives are copied). */
export function renderKubernetesRootfsFiles(k: KubernetesLayerInputs): Record<string, FileSpec> {
  return {
    [KUBERNETES_GUEST_PATHS.aptSource]: { content: renderKubernetesAptSource(k.repository), mode: 0o644 },
    [KUBERNETES_GUEST_PATHS.importScript]: { content: importImagesScript(), mode: 0o755 },
    [KUBERNETES_IMPORT_PARAMS]: { content: renderImportImagesParams(), mode: 0o644 },
    [KUBERNETES_GUEST_PATHS.importUnit]: { content: renderImportImagesUnit(), mode: 0o644 },
    [KUBERNETES_GUEST_PATHS.imageList]: { content: renderImageList(k.images), mode: 0o644 },
    // Replaces the OS layer's: the sandbox image is kubeadm's pause for the locked version.
    [GUEST_PATHS.containerdConfig.slice(1)]: { content: renderContainerdConfigFor(k), mode: 0o644 },
    ...(k.containerd2 ? { [KUBERNETES_GUEST_PATHS.containerdPreference]: { content: renderContainerdPreference(k.containerd2), mode: 0o644 } } : {}),
    ...(k.stagedUpgrade ? { [STAGED_UPGRADE_PATHS.target(k.stagedUpgrade.minor)]: { content: k.stagedUpgrade.targetJson, mode: 0o644 } } : {}),
  };
}

/** containerd 1.7's version 2 file, or containerd 2's version 3 file, with kubeadm's pause image either way. */
export function renderContainerdConfigFor(k: Pick<KubernetesLayerInputs, 'minor' | 'images' | 'containerd2'>): string {
  const opts = { kubernetesVersion: k.minor, pauseImage: pauseImageOf(Object.keys(k.images)) };
  return k.containerd2 ? renderContainerd2Config(opts) : renderContainerdConfig(opts);
}

/** Customize hook ($1 is the new root): hold the Kubernetes packages, enable the kubelet and the import. */
export function renderKubernetesHook(): string {
  return `#!/bin/sh
set -eu
chroot "$1" apt-mark hold ${HELD_PACKAGES.join(' ')}
chroot "$1" systemctl enable kubelet.service ${IMPORT_UNIT}
`;
}
