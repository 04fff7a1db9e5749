/**
 * NoCloud seed files rendered from the lab config (pure). The VM gets its user and per-lab
 * SSH key, ed25519 host keys only, no swap, the kernel modules and sysctls kubeadm needs,
 * containerd configured for the kubelet, and the placeholder ingress with the lab's certificate.
 */
import { stringify } from 'yaml';
import { sha256 } from '../core/hash.ts';
import { BOOTSTRAP_PATHS, GUEST_PARAM_FILES, GUEST_PATHS } from '../core/paths.ts';
import { LOG_TARGET_PATTERN, type LabConfig } from '../config/lab-config.ts';
import { renderContainerdConfig } from './containerd-config.ts';
import { placeholderScript, renderPlaceholderParams, renderPlaceholderUnit } from './placeholder-ingress.ts';
import { gzipSync } from 'node:zlib';
import type { AddonManifest } from './addons/bundle.ts';
import { renderRsyslogForwarding, type LogTarget } from './addons/rsyslog.ts';
import { BOOTSTRAP_UNIT, bootstrapScript, dnsProbeScript, renderBootstrapParams, renderBootstrapUnit } from './bootstrap.ts';

export interface SeedSecrets {
  sshPublicKey: string;
  /** The guest's SSH host key, made on the host so the client can pin it (no trust on first use). */
  hostKey: { privateKey: string; publicKey: string };
  /** PEM: the lab CA certificate, and the placeholder's certificate and key signed by it. */
  caCert: string;
  tlsCert: string;
  tlsKey: string;
}

/** What a Kubernetes lab's first boot needs beyond the OS: rendered by lab:up from lab.yaml and the lock. */
export interface ClusterSeed {
  kubeadmConfig: string;
  /** Every add-on manifest, the lab TLS one (with the CA key) included. */
  addons: AddonManifest[];
  /** kubeadm's pause image for the locked version: containerd's sandbox image. */
  pauseImage: string;
}

export interface SeedFiles {
  'user-data': string;
  'meta-data': string;
  'network-config': string;
}

export const LAB_CA_GUEST_PATH = '/usr/local/share/ca-certificates/labsmith-lab-ca.crt';
export const KUBERNETES_MODULES = ['overlay', 'br_netfilter'] as const;
export const KUBERNETES_SYSCTLS: Record<string, string> = {
  'net.bridge.bridge-nf-call-iptables': '1',
  'net.bridge.bridge-nf-call-ip6tables': '1',
  'net.ipv4.ip_forward': '1',
};

function guestPort(config: LabConfig, name: string, fallback: number): number {
  return config.network.forwards.find((f) => f.name === name)?.guest ?? fallback;
}

export function parseLogTarget(target: string): LogTarget {
  const m = LOG_TARGET_PATTERN.exec(target);
  if (!m) throw new Error(`bad log target ${target}`);
  return { protocol: m[1] as 'udp' | 'tcp', host: m[2]!, port: Number(m[3]) };
}

type WriteFile = { path: string; content: string; permissions: string; encoding?: 'gz+b64' };

/** Large manifests travel compressed: the seed stays small and cloud-init unpacks them. */
function compressed(path: string, content: string, permissions: string): WriteFile {
  return { path, content: gzipSync(content, { level: 9 }).toString('base64'), permissions, encoding: 'gz+b64' };
}

function clusterFiles(config: LabConfig, cluster: ClusterSeed): WriteFile[] {
  return [
    { path: BOOTSTRAP_PATHS.kubeadmConfig, content: cluster.kubeadmConfig, permissions: '0600' },
    // 0600: the lab TLS manifest carries the CA key.
    ...cluster.addons.map((a) => compressed(`${BOOTSTRAP_PATHS.dir}/${a.file}`, a.text, '0600')),
    // The scripts are the repository's files as they are; what varies per lab is in the parameter file.
    { path: BOOTSTRAP_PATHS.script, content: bootstrapScript(), permissions: '0755' },
    { path: GUEST_PARAM_FILES.bootstrap, content: renderBootstrapParams({ addons: cluster.addons, dnsDomain: config.kubernetes.dnsDomain }), permissions: '0644' },
    { path: BOOTSTRAP_PATHS.dnsProbe, content: dnsProbeScript(), permissions: '0755' },
    { path: BOOTSTRAP_PATHS.unit, content: renderBootstrapUnit(), permissions: '0644' },
  ];
}

function placeholderFiles(config: LabConfig, secrets: SeedSecrets): WriteFile[] {
  const tls = GUEST_PATHS.tlsDir;
  return [
    { path: `${tls}/placeholder.crt`, content: secrets.tlsCert, permissions: '0644' },
    { path: `${tls}/placeholder.key`, content: secrets.tlsKey, permissions: '0600' },
    { path: GUEST_PATHS.placeholderScript, content: placeholderScript(), permissions: '0755' },
    {
      path: GUEST_PARAM_FILES.placeholderIngress,
      content: renderPlaceholderParams({ httpPort: guestPort(config, 'http', 30080), httpsPort: guestPort(config, 'https', 30443) }),
      permissions: '0644',
    },
    {
      path: GUEST_PATHS.placeholderUnit,
      content: renderPlaceholderUnit({ scriptPath: GUEST_PATHS.placeholderScript, certFile: `${tls}/placeholder.crt`, keyFile: `${tls}/placeholder.key` }),
      permissions: '0644',
    },
  ];
}

export const RSYSLOG_FORWARDING_PATH = '/etc/rsyslog.d/60-labsmith-containers.conf';

/**
 * With a cluster, the bootstrap unit starts without blocking cloud-init (lab:up waits for it);
 * without one, the placeholder ingress answers on the ingress NodePorts so an OS-only lab's
 * forwarding can still be checked end to end.
 */
export function renderUserData(config: LabConfig, secrets: SeedSecrets, cluster?: ClusterSeed): string {
  const tls = GUEST_PATHS.tlsDir;
  const cloudConfig = {
    hostname: config.name,
    fqdn: `${config.name}.${config.kubernetes.dnsDomain}`,
    prefer_fqdn_over_hostname: false,
    manage_etc_hosts: true,
    // A minimal image has no other locale; without this the final stage fails.
    locale: 'C.UTF-8',
    timezone: 'Etc/UTC',
    // RSA/ECDSA key generation costs ~30 s under emulation and nothing uses them.
    ssh_genkeytypes: ['ed25519'],
    ssh_deletekeys: true,
    ssh_keys: { ed25519_private: secrets.hostKey.privateKey, ed25519_public: secrets.hostKey.publicKey.trim() },
    ssh_pwauth: false,
    disable_root: true,
    users: [
      {
        name: config.ssh.user,
        gecos: 'labsmith lab user',
        groups: ['sudo', 'docker'],
        shell: '/bin/bash',
        sudo: 'ALL=(ALL) NOPASSWD:ALL',
        lock_passwd: true,
        ssh_authorized_keys: [secrets.sshPublicKey.trim()],
      },
    ],
    growpart: { mode: 'auto', devices: ['/'] },
    resize_rootfs: true,
    // The kubelet refuses to run with swap on.
    swap: { size: 0 },
    write_files: [
      { path: '/etc/modules-load.d/labsmith-kubernetes.conf', content: KUBERNETES_MODULES.join('\n') + '\n', permissions: '0644' },
      {
        path: '/etc/sysctl.d/90-labsmith-kubernetes.conf',
        content: Object.entries(KUBERNETES_SYSCTLS).map(([k, v]) => `${k} = ${v}`).join('\n') + '\n',
        permissions: '0644',
      },
      { path: GUEST_PATHS.containerdConfig, content: renderContainerdConfig({ kubernetesVersion: config.kubernetes.version, pauseImage: cluster?.pauseImage }), permissions: '0644' },
      { path: `${tls}/ca.crt`, content: secrets.caCert, permissions: '0644' },
      // Trusted by the system from the final stage on: regenerating the bundle costs a minute
      // of emulated CPU, so it runs after SSH is up instead of in cloud-init's ca_certs module.
      { path: LAB_CA_GUEST_PATH, content: secrets.caCert, permissions: '0644' },
      ...(config.addons.logTarget ? [{ path: RSYSLOG_FORWARDING_PATH, content: renderRsyslogForwarding({ target: parseLogTarget(config.addons.logTarget) }), permissions: '0644' }] : []),
      ...(cluster ? clusterFiles(config, cluster) : placeholderFiles(config, secrets)),
    ],
    runcmd: [
      ['swapoff', '-a'],
      ...KUBERNETES_MODULES.map((m) => ['modprobe', m]),
      ['sysctl', '--system'],
      ['systemctl', 'restart', 'containerd'],
      ['systemctl', 'daemon-reload'],
      ...(config.addons.logTarget ? [['systemctl', 'restart', 'rsyslog']] : []),
      cluster ? ['systemctl', 'enable', '--now', '--no-block', BOOTSTRAP_UNIT] : ['systemctl', 'enable', '--now', 'labsmith-placeholder-ingress.service'],
      ['update-ca-certificates'],
    ],
  };
  return `#cloud-config\n${stringify(cloudConfig, { lineWidth: 0 })}`;
}

export function renderMetaData(config: LabConfig, userData: string): string {
  // A new instance id whenever the user-data changes makes cloud-init apply it again.
  return stringify({ 'instance-id': `${config.name}-${sha256(userData).slice(0, 12)}`, 'local-hostname': config.name });
}

export function renderNetworkConfig(): string {
  return stringify({
    version: 2,
    ethernets: { primary: { match: { name: 'en*' }, dhcp4: true, dhcp6: false } },
  });
}

export function renderSeedFiles(config: LabConfig, secrets: SeedSecrets, cluster?: ClusterSeed): SeedFiles {
  const userData = renderUserData(config, secrets, cluster);
  return { 'user-data': userData, 'meta-data': renderMetaData(config, userData), 'network-config': renderNetworkConfig() };
}
