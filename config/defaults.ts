/** Defaults for lab.yaml, in one place (pure). */
import { basename, join } from 'node:path';
import type { Forward, ForwardProtocol, LabConfig, ServerProfile, UserCheck } from './lab-config.ts';
import type { LabConfigInput } from './schema.ts';

export const DEFAULT_FORWARDS: Record<string, { host: number; guest: number }> = {
  http: { host: 80, guest: 30080 },
  https: { host: 443, guest: 30443 },
  ssh: { host: 2222, guest: 22 },
  apiserver: { host: 6443, guest: 6443 },
};

/** Guest port and protocol for well-known forward names, used when lab.yaml names one without them (not forwarded unless named). */
export const WELL_KNOWN_FORWARDS: Record<string, { guest: number; protocol: ForwardProtocol }> = {
  smtp: { guest: 25, protocol: 'tcp' },
  submissions: { guest: 465, protocol: 'tcp' },
  submission: { guest: 587, protocol: 'tcp' },
  imaps: { guest: 993, protocol: 'tcp' },
  dns: { guest: 53, protocol: 'both' },
};

export const DEFAULTS = {
  name: 'lab',
  debian: { suite: 'trixie', mirror: 'http://deb.debian.org/debian', securityMirror: 'http://deb.debian.org/debian-security' },
  vm: { cpus: 2, memory: '4GiB', disk: '20GiB', accel: 'auto' as const, boot: 'uefi' as 'uefi' | 'direct' },
  network: { hostAddress: '127.0.0.1' },
  kubernetes: { version: '1.37', dnsDomain: 'cluster.local', podSubnet: '10.42.0.0/16', serviceSubnet: '10.96.0.0/12', enabled: true, containerd: '1.7' as const },
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
    const known = WELL_KNOWN_FORWARDS[fname];
    const guest = given?.guest ?? fallback?.guest ?? known?.guest ?? host;
    const protocol = given?.protocol ?? known?.protocol ?? 'tcp';
    if (host !== undefined && guest !== undefined) forwards.push({ name: fname, host, guest, protocol });
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
    checks: (input.checks ?? []).map(fillUserCheckDefaults),
    // Restore on new hardware (issue 11).
    ...(input.server ? { server: fillServerDefaults(input.server, name) } : {}),
    backup: { preBackup: input.backup?.preBackup ?? [] },
    workloads: (input.workloads ?? []).map((w) => ({
      name: w.name ?? (basename(w.path.replace(/\/+$/, '')) || 'workload'),
      path: w.path,
      images: w.images ?? [],
      secrets: (w.secrets ?? []).map((s) => ({ name: s.name, namespace: s.namespace, type: s.type ?? 'Opaque', data: s.data })),
      rolloutTimeoutSeconds: w.rolloutTimeoutSeconds ?? 300,
    })),
    registries: (input.registries ?? []).map((r) => ({ ...r })),
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

// --- user checks ---

export const USER_CHECK_DEFAULTS = { timeoutSeconds: 30, retries: 2, status: 200, ehlo: 'labsmith.invalid', from: 'labsmith@labsmith.invalid', qtype: 'A' as const, transports: ['udp', 'tcp'] as ('udp' | 'tcp')[], exitCode: 0 };

function fillUserCheckDefaults(c: NonNullable<LabConfigInput['checks']>[number]): UserCheck {
  const base = { timeoutSeconds: c.timeoutSeconds ?? USER_CHECK_DEFAULTS.timeoutSeconds, retries: c.retries ?? USER_CHECK_DEFAULTS.retries };
  switch (c.type) {
    case 'http':
      return { ...c, ...base, status: c.status ?? USER_CHECK_DEFAULTS.status };
    case 'tcp':
      return { ...c, ...base };
    case 'smtp':
      return { ...c, ...base, ehlo: c.ehlo ?? USER_CHECK_DEFAULTS.ehlo, starttls: c.starttls ?? true, from: c.from ?? USER_CHECK_DEFAULTS.from };
    case 'dns':
      return { ...c, ...base, qtype: c.qtype ?? USER_CHECK_DEFAULTS.qtype, transports: c.transports ?? USER_CHECK_DEFAULTS.transports };
    case 'command':
      return { ...c, ...base, exitCode: c.exitCode ?? USER_CHECK_DEFAULTS.exitCode };
  }
}
