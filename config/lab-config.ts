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
  debian: { suite: string; mirror: string; securityMirror: string; sourceDateEpoch?: number; snapshot?: string };
  vm: { cpus: number; memory: string; disk: string; accel: 'auto' | 'kvm' | 'tcg' };
  network: { hostAddress: string; forwards: Forward[] };
  kubernetes: { version: string; dnsDomain: string; podSubnet: string; serviceSubnet: string; enabled: boolean };
  addons: { ingressDomain: string; storageDir: string; logTarget?: string; policyNamespaces: string[]; defaultDenyEgress: boolean };
  ssh: { user: string };
  libvirt: { uri: string; pool: string; networkMode: 'nat' | 'bridge'; subnet: string; bridge?: string };
}
