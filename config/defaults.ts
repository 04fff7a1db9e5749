/** Defaults for lab.yaml, in one place (pure). */
import { join } from 'node:path';
import type { Forward, LabConfig, ServerProfile } from './lab-config.ts';
import type { LabConfigInput } from './schema.ts';

export const DEFAULT_FORWARDS: Record<string, { host: number; guest: number }> = {
  http: { host: 80, guest: 30080 },
  https: { host: 443, guest: 30443 },
  ssh: { host: 2222, guest: 22 },
  apiserver: { host: 6443, guest: 6443 },
};

export const DEFAULTS = {
  name: 'lab',
  debian: { suite: 'trixie', mirror: 'http://deb.debian.org/debian', securityMirror: 'http://deb.debian.org/debian-security' },
  vm: { cpus: 2, memory: '4GiB', disk: '20GiB', accel: 'auto' as const },
  network: { hostAddress: '127.0.0.1' },
  kubernetes: { version: '1.37', dnsDomain: 'cluster.local', podSubnet: '10.42.0.0/16', serviceSubnet: '10.96.0.0/12', enabled: true },
  addons: { storageDir: '/var/lib/labsmith/volumes', policyNamespaces: ['default'], defaultDenyEgress: false },
  ssh: { user: 'admin' },
  libvirt: { uri: 'qemu:///system', pool: 'default', networkMode: 'nat' as const, subnet: '192.168.150.0/24' },
};

/** Fills every missing field. Forwards merge by name over the defaults. */
export function fillDefaults(input: LabConfigInput, stateRoot: string): LabConfig {
  const name = input.name ?? DEFAULTS.name;
  const forwards: Forward[] = [];
  const names = new Set([...Object.keys(DEFAULT_FORWARDS), ...Object.keys(input.network?.forwards ?? {})]);
  for (const fname of names) {
    const given = input.network?.forwards?.[fname];
    const fallback = DEFAULT_FORWARDS[fname];
    const host = given?.host ?? fallback?.host;
    const guest = given?.guest ?? fallback?.guest ?? host;
    if (host !== undefined && guest !== undefined) forwards.push({ name: fname, host, guest });
  }
  return {
    name,
    stateDir: input.stateDir ?? join(stateRoot, name),
    debian: { ...DEFAULTS.debian, ...input.debian },
    vm: { ...DEFAULTS.vm, ...input.vm },
    network: { hostAddress: input.network?.hostAddress ?? DEFAULTS.network.hostAddress, forwards },
    kubernetes: { ...DEFAULTS.kubernetes, ...input.kubernetes },
    addons: { ingressDomain: `${name}.test`, ...DEFAULTS.addons, ...input.addons },
    ssh: { ...DEFAULTS.ssh, ...input.ssh },
    libvirt: { ...DEFAULTS.libvirt, ...input.libvirt },
    // Restore on new hardware (issue 11).
    ...(input.server ? { server: fillServerDefaults(input.server, name) } : {}),
    backup: { preBackup: input.backup?.preBackup ?? [] },
  };
}

/** The server profile's defaults (issue 11): hostname from the lab name, Traefik for HTTP-01, the domain as the certificate name. */
function fillServerDefaults(server: NonNullable<LabConfigInput['server']>, name: string): ServerProfile {
  const le = server.letsEncrypt;
  return {
    hostname: server.hostname ?? name,
    domain: server.domain,
    network: {
      match: server.network.match,
      ...(server.network.ipv4 ? { ipv4: server.network.ipv4 } : {}),
      ...(server.network.ipv6 ? { ipv6: server.network.ipv6 } : {}),
      dns: { servers: server.network.dns?.servers ?? [], search: server.network.dns?.search ?? [] },
    },
    authorizedKeyFiles: server.authorizedKeyFiles ?? [],
    ...(le
      ? {
          letsEncrypt: {
            email: le.email,
            server: le.server ?? 'production',
            solver: le.solver.type === 'http01' ? { type: 'http01' as const, ingressClass: le.solver.ingressClass ?? 'traefik' } : le.solver,
            names: le.names ?? [server.domain],
          },
        }
      : {}),
    ...(server.logTarget ? { logTarget: server.logTarget } : {}),
  };
}
