/**
 * The lab config after defaults: plain types and the formats renderers share. A leaf:
 * images/, cloud-init/ and lab/ import it; it imports nothing of theirs (and no zod).
 */

/** `udp://HOST:PORT` or `tcp://HOST:PORT`: protocol, host and port are its groups. */
export const LOG_TARGET_PATTERN = /^(udp|tcp):\/\/([^\s:/]+):(\d{1,5})$/;

export interface Forward {
  name: string;
  host: number;
  guest: number;
}

/** The config after defaults: every field present. */
export interface LabConfig {
  name: string;
  stateDir: string;
  debian: { suite: string; mirror: string; securityMirror: string; sourceDateEpoch?: number };
  vm: { cpus: number; memory: string; disk: string; accel: 'auto' | 'kvm' | 'tcg' };
  network: { hostAddress: string; forwards: Forward[] };
  kubernetes: { version: string; dnsDomain: string; podSubnet: string; serviceSubnet: string; enabled: boolean };
  addons: { ingressDomain: string; storageDir: string; logTarget?: string; policyNamespaces: string[]; defaultDenyEgress: boolean };
  ssh: { user: string };
  libvirt: { uri: string; pool: string; networkMode: 'nat' | 'bridge'; subnet: string; bridge?: string };
  // Restore on new hardware (issue 11): the real server, and what a backup runs first.
  /** The production machine this lab replicates; `server:seed` renders its first boot. */
  server?: ServerProfile;
  backup: { preBackup: PreBackupHook[] };
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
