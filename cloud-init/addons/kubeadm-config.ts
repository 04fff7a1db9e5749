/**
 * kubeadm's configuration for the single-node cluster (pure): kubeadm.k8s.io/v1beta4
 * InitConfiguration + ClusterConfiguration, and the kubelet's systemd cgroup driver.
 * The node is untainted so workloads run on the only node, as on the production server.
 */
import { stringify } from 'yaml';
import type { LabConfig } from '../../config/lab-config.ts';

export const CONTAINERD_SOCKET = 'unix:///run/containerd/containerd.sock';

/** The newest patch release is resolved by the lock file (issue 3); the minor comes from lab.yaml. */
export function renderKubeadmConfig(config: LabConfig, opts: { kubernetesVersion: string; advertiseAddress?: string; certSANs: string[] }): string {
  const init = {
    apiVersion: 'kubeadm.k8s.io/v1beta4',
    kind: 'InitConfiguration',
    // Without an address kubeadm takes the default route's: right for any driver's single NIC.
    localAPIEndpoint: opts.advertiseAddress ? { advertiseAddress: opts.advertiseAddress, bindPort: 6443 } : { bindPort: 6443 },
    nodeRegistration: {
      name: config.name,
      criSocket: CONTAINERD_SOCKET,
      // An empty list removes the control-plane NoSchedule taint: the single node runs everything.
      taints: [],
      ...(opts.advertiseAddress ? { kubeletExtraArgs: [{ name: 'node-ip', value: opts.advertiseAddress }] } : {}),
    },
  };
  const cluster = {
    apiVersion: 'kubeadm.k8s.io/v1beta4',
    kind: 'ClusterConfiguration',
    kubernetesVersion: opts.kubernetesVersion,
    clusterName: config.name,
    networking: {
      dnsDomain: config.kubernetes.dnsDomain,
      podSubnet: config.kubernetes.podSubnet,
      serviceSubnet: config.kubernetes.serviceSubnet,
    },
    apiServer: { certSANs: opts.certSANs },
    controllerManager: { extraArgs: [{ name: 'allocate-node-cidrs', value: 'true' }] },
  };
  const kubelet = {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    cgroupDriver: 'systemd',
    failSwapOn: true,
    containerRuntimeEndpoint: CONTAINERD_SOCKET,
  };
  return [init, cluster, kubelet].map((doc) => stringify(doc, { lineWidth: 0 })).join('---\n');
}
