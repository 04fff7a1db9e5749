/**
 * The lab config after defaults: plain types and the formats renderers share. A leaf:
 * images/, cloud-init/ and lab/ import it; it imports nothing of theirs (and no zod).
 */

/** `udp://HOST:PORT` or `tcp://HOST:PORT`: protocol, host and port are its groups. */
export const LOG_TARGET_PATTERN = /^(udp|tcp):\/\/([^\s:/]+):(\d{1,5})$/;

export type ForwardProtocol = 'tcp' | 'udp' | 'both';

export interface Forward {
  name: string;
  host: number;
  guest: number;
  /** Absent means tcp (lab state recorded before forwards had protocols). */
  protocol?: ForwardProtocol;
}

/** The transport protocols a forward carries, each rendered as its own rule (qemu hostfwd, nft). */
export const forwardProtocols = (f: Forward): ('tcp' | 'udp')[] => (f.protocol === 'both' ? ['tcp', 'udp'] : [f.protocol ?? 'tcp']);

/** The containerd majors an image can carry. */
export type ContainerdMajor = '1.7' | '2';

/** The config after defaults: every field present. */
export interface LabConfig {
  name: string;
  stateDir: string;
  debian: { suite: string; mirror: string; securityMirror: string; sourceDateEpoch?: number; snapshot?: string };
  /** `boot`: `uefi` boots the disk as a server does (OVMF, GRUB); `direct` hands the disk's own kernel and initramfs to qemu. */
  vm: { cpus: number; memory: string; disk: string; accel: 'auto' | 'kvm' | 'tcg'; boot: 'uefi' | 'direct' };
  network: { hostAddress: string; forwards: Forward[] };
  kubernetes: {
    version: string;
    dnsDomain: string;
    podSubnet: string;
    serviceSubnet: string;
    enabled: boolean;
    /** Which containerd the image carries: Debian's 1.7 (the suite's), or the pinned containerd 2 (Debian forky's, from the lock) that 1.38's kubelet requires. */
    containerd: ContainerdMajor;
  };
  addons: { ingressDomain: string; storageDir: string; logTarget?: string; policyNamespaces: string[]; defaultDenyEgress: boolean };
  ssh: { user: string };
  libvirt: { uri: string; pool: string; networkMode: 'nat' | 'bridge'; subnet: string; bridge?: string };
  /** The user's own checks, run by test:e2e after the built-in suite. */
  checks: UserCheck[];
  // Restore on new hardware (issue 11): the real server, and what a backup runs first.
  /** The production machine this lab replicates; `server:seed` renders its first boot. */
  server?: ServerProfile;
  backup: { preBackup: PreBackupHook[] };
  /** Your own manifests (issue 14), applied in order after the cluster bootstrap. */
  workloads: WorkloadSource[];
  /** Your own registries (issue 14): containerd's certs.d hosts.toml with their CA, and the kubelet's credentials. */
  registries: RegistryConfig[];
}

/** A value from a host file or an environment variable of the labsmith process (read at lab:up, never logged). */
export interface SecretSource {
  file?: string;
  env?: string;
}

/** One `registries:` entry. */
export interface RegistryConfig {
  /** host[:port] as image references name it, e.g. "registry.example.com:5000". */
  host: string;
  /** PEM file of the CA that signed the registry's certificate (a host path; relative to lab.yaml's directory). */
  ca?: string;
  /** A registry this one mirrors (e.g. docker.io): pulls of its images go here first. */
  mirrorOf?: string;
  credentials?: { username: SecretSource | string; password: SecretSource };
}

/** One `workloads:` entry: a directory of manifests (plain YAML, or a kustomization). */
export interface WorkloadSource {
  /** For messages and ordering; default: the directory's base name. */
  name: string;
  /** The directory: absolute once loaded (a relative one in lab.yaml is relative to lab.yaml's directory). */
  path: string;
  /** Image references the source runs: locked by digest and baked into the image, so the replica needs no registry. */
  images: string[];
  /** Secrets the manifests need, made in the guest from host files or environment variables; never logged. */
  secrets: WorkloadSecret[];
  /** How long each Deployment, StatefulSet and DaemonSet of the source may take to roll out. */
  rolloutTimeoutSeconds: number;
}

export interface WorkloadSecret {
  name: string;
  namespace: string;
  /** Secret type, default Opaque. */
  type: string;
  /** Each key from exactly one of a host file or an environment variable of the labsmith process. */
  data: Record<string, { file?: string; env?: string }>;
}

/** The real server: its own address, names, keys, issuers and log target (no lab CA, no forwards). */
export interface ServerProfile {
  hostname: string;
  domain: string;
  network: {
    /** The NIC by MAC address: never by a name that changes with the hardware. */
    match: { macAddress?: string };
    /** "203.0.113.10/24" with its gateway. */
    ipv4?: { address: string; gateway?: string };
    ipv6?: { address: string; gateway?: string };
    dns: { servers: string[]; search: string[] };
  };
  /** Files with the user's own authorized_keys lines (the lab's generated key is not used). */
  authorizedKeyFiles: string[];
  letsEncrypt?: ServerLetsEncrypt;
  /** Overrides addons.logTarget on the server. */
  logTarget?: string;
}

export interface ServerLetsEncrypt {
  email: string;
  server: 'production' | 'staging';
  solver: { type: 'http01'; ingressClass: string } | { type: 'dns01-rfc2136'; nameserver: string; tsigKeyName: string; tsigSecretName: string; tsigAlgorithm?: string };
  /** Names for an HTTP-01 certificate (HTTP-01 cannot issue a wildcard); DNS-01 issues *.<domain>. */
  names: string[];
}

/** A command run in a namespace before its volumes are copied (a database dump, a mail-store sync). */
export interface PreBackupHook {
  namespace: string;
  /** What `kubectl exec` runs in, e.g. "deploy/postgres". */
  target: string;
  container?: string;
  command: string[];
}

// --- user checks (lab.yaml `checks:`) ---

/** Record types the DNS probe encodes and decodes. */
export const DNS_QUERY_TYPES = ['A', 'AAAA', 'MX', 'TXT', 'CNAME', 'NS', 'SRV', 'PTR'] as const;
export type DnsQueryType = (typeof DNS_QUERY_TYPES)[number];
export const USER_CHECK_TYPES = ['http', 'tcp', 'smtp', 'dns', 'command'] as const;

interface UserCheckBase {
  name: string;
  /** Per attempt budget for the whole check, seconds. */
  timeoutSeconds: number;
  /** Attempts after the first. */
  retries: number;
  hint?: string;
}

/** `url`'s port is a host-side forward port; the host part is sent as Host and SNI. */
export interface HttpUserCheck extends UserCheckBase {
  type: 'http';
  url: string;
  status: number;
  /** A regular expression the body must match. */
  body?: string;
}

export interface TcpUserCheck extends UserCheckBase {
  type: 'tcp';
  port: number;
  /** A regular expression the first line must match, e.g. "^220". */
  banner?: string;
}

export interface SmtpUserCheck extends UserCheckBase {
  type: 'smtp';
  port: number;
  /** Name the certificate is verified against (SNI); default the lab domain. */
  tlsName?: string;
  ehlo: string;
  starttls: boolean;
  /** Send a test message to this local recipient. */
  sendTo?: string;
  from: string;
}

export interface DnsUserCheck extends UserCheckBase {
  type: 'dns';
  port: number;
  query: string;
  qtype: DnsQueryType;
  /** Expected answers as the probe prints them (A "192.0.2.1", MX "10 mail.example.test"), order-free; empty expects NXDOMAIN. */
  expect: string[];
  transports: ('udp' | 'tcp')[];
}

export interface CommandUserCheck extends UserCheckBase {
  type: 'command';
  /** Run with sh -c in the guest over SSH (kubectl is there on a cluster lab). */
  run: string;
  exitCode: number;
  /** A regular expression stdout must match. */
  output?: string;
}

export type UserCheck = HttpUserCheck | TcpUserCheck | SmtpUserCheck | DnsUserCheck | CommandUserCheck;
