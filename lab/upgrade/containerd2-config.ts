/**
 * containerd 2's config for the kubelet (pure): the same inputs as today's 1.7 config
 * (cloud-init/containerd-config.ts) in containerd 2's `version = 3` layout, where the CRI plugin is
 * split into an images plugin (the sandbox image is a pinned image) and a runtime plugin.
 */
import { CONTAINERD_CERTS_DIR, pauseImageFor } from '../../cloud-init/containerd-config.ts';

export const CNI_BIN_DIR = '/opt/cni/bin';
export const CNI_CONF_DIR = '/etc/cni/net.d';

export function renderContainerd2Config(opts: { kubernetesVersion: string; pauseImage?: string }): string {
  const sandbox = opts.pauseImage ?? pauseImageFor(opts.kubernetesVersion);
  return `# Written by labsmith: containerd 2 for the kubelet (and for Docker, which shares it).
version = 3

[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = "${sandbox}"

# Registry hosts and CAs, read without a restart (as in the 1.7 config).
[plugins."io.containerd.cri.v1.images".registry]
  config_path = "${CONTAINERD_CERTS_DIR}"

[plugins."io.containerd.cri.v1.runtime".containerd]
  default_runtime_name = "runc"

  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"

    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
      SystemdCgroup = true

[plugins."io.containerd.cri.v1.runtime".cni]
  bin_dirs = ["${CNI_BIN_DIR}"]
  conf_dir = "${CNI_CONF_DIR}"
`;
}
