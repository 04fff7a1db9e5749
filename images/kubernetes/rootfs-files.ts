/**
 * What the Kubernetes layer adds to the root filesystem besides the packages (pure): the
 * pkgs.k8s.io apt source (for later upgrades, held until the user moves them), and the first-boot
 * import { KUBERNETES_GUEST_PATHS } from '../../core/paths.ts';
export { KUBERNETES_GUEST_PATHS };
import of the baked image archives into containerd's k8s.io namespace, pinned so image garbage
 * collection keeps them. Importing needs a running containerd, so it runs once at boot, before
 * the kubelet, and remembers what it imported.
 */
import { KUBERNETES_GUEST_PATHS } from '../../core/paths.ts';
import type { FileSpec } from '../boot-files.ts';
import type { KubernetesLayerInputs } from './layer-inputs.ts';


export const IMPORT_UNIT = 'labsmith-import-images.service';
/** The label the CRI plugin reads to keep an image from garbage collection. */
export const PINNED_LABEL = 'io.cri-containerd.pinned=pinned';
export const HELD_PACKAGES = ['kubelet', 'kubeadm', 'kubectl', 'cri-tools', 'kubernetes-cni'] as const;

export function renderKubernetesAptSource(repository: string, keyring = `/${KUBERNETES_GUEST_PATHS.keyring}`): string {
  return `Types: deb\nURIs: ${repository}\nSuites: /\nSigned-By: ${keyring}\n`;
}

/**
 * Imports every archive not imported yet, then pins every image the list names. Environment
 * overrides exist so the same script runs against a test containerd on the build host.
 */
export function renderImportImagesScript(): string {
  return `#!/bin/sh
# Written by labsmith: the image archives baked into this image -> containerd's k8s.io namespace.
set -eu
dir="\${LABSMITH_IMAGES_DIR:-/${KUBERNETES_GUEST_PATHS.imagesDir}}"
state="\${LABSMITH_IMPORT_STATE:-/var/lib/labsmith/imported}"
address="\${CONTAINERD_ADDRESS:-/run/containerd/containerd.sock}"
ctr() { command ctr --address "$address" --namespace k8s.io "$@"; }
mkdir -p "$state"
for archive in "$dir"/*.oci.tar; do
  [ -e "$archive" ] || continue
  name=$(basename "$archive")
  if [ -e "$state/$name" ]; then continue; fi
  echo "labsmith: importing $name"
  ctr images import "$archive"
  touch "$state/$name"
done
while read -r ref; do
  [ -n "$ref" ] || continue
  if ! ctr images ls -q | grep -qxF "$ref"; then
    echo "labsmith: $ref is not in containerd after the import" >&2
    exit 1
  fi
  ctr images label "$ref" ${PINNED_LABEL} >/dev/null
done < "$dir/images.list"
echo "labsmith: $(wc -l < "$dir/images.list") images present and pinned"
`;
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
ExecStart=/${KUBERNETES_GUEST_PATHS.importScript}

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
    [KUBERNETES_GUEST_PATHS.importScript]: { content: renderImportImagesScript(), mode: 0o755 },
    [KUBERNETES_GUEST_PATHS.importUnit]: { content: renderImportImagesUnit(), mode: 0o644 },
    [KUBERNETES_GUEST_PATHS.imageList]: { content: renderImageList(k.images), mode: 0o644 },
  };
}

/** Customize hook ($1 is the new root): hold the Kubernetes packages, enable the kubelet and the import. */
export function renderKubernetesHook(): string {
  return `#!/bin/sh
set -eu
chroot "$1" apt-mark hold ${HELD_PACKAGES.join(' ')}
chroot "$1" systemctl enable kubelet.service ${IMPORT_UNIT}
`;
}
