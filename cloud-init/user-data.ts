/**
 * NoCloud seed files rendered from the lab config (pure). The VM gets its user and per-lab
 * SSH key, ed25519 host keys only, no swap, the kernel modules and sysctls kubeadm needs,
 * containerd configured for the kubelet, and the placeholder ingress with the lab's certificate.
 */
import { stringify } from 'yaml';
import { sha256 } from '../core/hash.ts';
import { GUEST_PATHS } from '../core/paths.ts';
import type { LabConfig } from '../lab/config/schema.ts';
import { renderContainerdConfig } from './containerd-config.ts';
import { renderPlaceholderScript, renderPlaceholderUnit } from './placeholder-ingress.ts';

export interface SeedSecrets {
  sshPublicKey: string;
  /** The guest's SSH host key, made on the host so the client can pin it (no trust on first use). */
  hostKey: { privateKey: string; publicKey: string };
  /** PEM: the lab CA certificate, and the placeholder's certificate and key signed by it. */
  caCert: string;
  tlsCert: string;
  tlsKey: string;
}

export interface SeedFiles {
  'user-data': string;
  'meta-data': string;
  'network-config': string;
}

export const KUBERNETES_MODULES = ['overlay', 'br_netfilter'] as const;
export const KUBERNETES_SYSCTLS: Record<string, string> = {
  'net.bridge.bridge-nf-call-iptables': '1',
  'net.bridge.bridge-nf-call-ip6tables': '1',
  'net.ipv4.ip_forward': '1',
};

function guestPort(config: LabConfig, name: string, fallback: number): number {
  return config.network.forwards.find((f) => f.name === name)?.guest ?? fallback;
}

export function renderUserData(config: LabConfig, secrets: SeedSecrets): string {
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
      { path: GUEST_PATHS.containerdConfig, content: renderContainerdConfig({ kubernetesVersion: config.kubernetes.version }), permissions: '0644' },
      { path: `${tls}/ca.crt`, content: secrets.caCert, permissions: '0644' },
      // Trusted by the system from the final stage on: regenerating the bundle costs a minute
      // of emulated CPU, so it runs after SSH is up instead of in cloud-init's ca_certs module.
      { path: '/usr/local/share/ca-certificates/labsmith-lab-ca.crt', content: secrets.caCert, permissions: '0644' },
      { path: `${tls}/placeholder.crt`, content: secrets.tlsCert, permissions: '0644' },
      { path: `${tls}/placeholder.key`, content: secrets.tlsKey, permissions: '0600' },
      {
        path: GUEST_PATHS.placeholderScript,
        content: renderPlaceholderScript({ httpPort: guestPort(config, 'http', 30080), httpsPort: guestPort(config, 'https', 30443) }),
        permissions: '0755',
      },
      {
        path: GUEST_PATHS.placeholderUnit,
        content: renderPlaceholderUnit({ scriptPath: GUEST_PATHS.placeholderScript, certFile: `${tls}/placeholder.crt`, keyFile: `${tls}/placeholder.key` }),
        permissions: '0644',
      },
    ],
    runcmd: [
      ['swapoff', '-a'],
      ...KUBERNETES_MODULES.map((m) => ['modprobe', m]),
      ['sysctl', '--system'],
      ['systemctl', 'restart', 'containerd'],
      ['systemctl', 'daemon-reload'],
      ['systemctl', 'enable', '--now', 'labsmith-placeholder-ingress.service'],
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

export function renderSeedFiles(config: LabConfig, secrets: SeedSecrets): SeedFiles {
  const userData = renderUserData(config, secrets);
  return { 'user-data': userData, 'meta-data': renderMetaData(config, userData), 'network-config': renderNetworkConfig() };
}
