/**
 * kubeadm's configuration for the single-node cluster (pure): kubeadm.k8s.io/v1beta4
 * InitConfiguration + ClusterConfiguration, and the kubelet's systemd cgroup driver.
 * The node is untainted so workloads run on the only node, as on the production server.
 * A restore (lab/restore/cluster-plan.ts) renders its InitConfiguration and kubelet
 * document here too, with the backup's ClusterConfiguration in between.
 */
import { stringify } from 'yaml';
import type { LabConfig } from '../../config/lab-config.ts';

export const CONTAINERD_SOCKET = 'unix:///run/containerd/containerd.sock';

export interface InitConfigurationOptions {
  /** The node's name: a restore keeps the old node's (etcd's member, the node object and the certificates carry it). */
  nodeName: string;
  advertiseAddress?: string;
  /** kubeadm preflight checks to ignore (a restore onto a pre-filled etcd dataDir). */
  ignorePreflightErrors?: string[];
}

export function renderInitConfiguration(opts: InitConfigurationOptions): Record<string, unknown> {
  return {
    apiVersion: 'kubeadm.k8s.io/v1beta4',
    kind: 'InitConfiguration',
    // Without an address kubeadm takes the default route's: right for any driver's single NIC.
    localAPIEndpoint: opts.advertiseAddress ? { advertiseAddress: opts.advertiseAddress, bindPort: 6443 } : { bindPort: 6443 },
    nodeRegistration: {
      name: opts.nodeName,
      criSocket: CONTAINERD_SOCKET,
      // An empty list removes the control-plane NoSchedule taint: the single node runs everything.
      taints: [],
      ...(opts.advertiseAddress ? { kubeletExtraArgs: [{ name: 'node-ip', value: opts.advertiseAddress }] } : {}),
      ...(opts.ignorePreflightErrors?.length ? { ignorePreflightErrors: opts.ignorePreflightErrors } : {}),
    },
  };
}

export const KUBELET_CONFIGURATION = {
  apiVersion: 'kubelet.config.k8s.io/v1beta1',
  kind: 'KubeletConfiguration',
  cgroupDriver: 'systemd',
  failSwapOn: true,
  containerRuntimeEndpoint: CONTAINERD_SOCKET,
} as const;

/** InitConfiguration, ClusterConfiguration, KubeletConfiguration as one multi-document file. */
export function renderKubeadmDocuments(init: Record<string, unknown>, cluster: Record<string, unknown>): string {
  return [init, cluster, KUBELET_CONFIGURATION].map((doc) => stringify(doc, { lineWidth: 0 })).join('---\n');
}

/** The newest patch release is resolved by the lock file (issue 3); the minor comes from lab.yaml. */
export function renderKubeadmConfig(config: LabConfig, opts: { kubernetesVersion: string; advertiseAddress?: string; certSANs: string[] }): string {
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
  return renderKubeadmDocuments(renderInitConfiguration({ nodeName: config.name, advertiseAddress: opts.advertiseAddress }), cluster);
}
