/** containerd's config for the kubelet (pure): CRI with the systemd cgroup driver and kubeadm's pause image. */

/** kubeadm's pause image per Kubernetes minor; containerd's sandbox_image must equal it. */
export const PAUSE_IMAGES: Record<string, string> = {
  '1.37': 'registry.k8s.io/pause:3.10.1',
};

export function pauseImageFor(version: string): string {
  return PAUSE_IMAGES[version] ?? 'registry.k8s.io/pause:3.10.1';
}

/** The minor an OS-only image's containerd names the pause image for (it runs no kubelet). */
export const DEFAULT_PAUSE_MINOR = '1.37';

/** Per-registry settings (hosts.toml with a lab's registry CA) are read at each pull: adding one needs no restart. */
export const CONTAINERD_CERTS_DIR = '/etc/containerd/certs.d';

/**
 * Baked into the image (nothing in it is per lab): `pauseImage` comes from kubeadm's list for
 * the locked version (the Kubernetes layer); the table is the fallback for OS-only images.
 */
export function renderContainerdConfig(opts: { kubernetesVersion?: string; pauseImage?: string }): string {
  return `# Written by labsmith: containerd for the kubelet (and for Docker, which shares it).
version = 2

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${opts.pauseImage ?? pauseImageFor(opts.kubernetesVersion ?? DEFAULT_PAUSE_MINOR)}"

  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "${CONTAINERD_CERTS_DIR}"

  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = true

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
`;
}
