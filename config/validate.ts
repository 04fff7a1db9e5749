/**
 * Semantic checks on a filled lab config (pure). Every problem is returned at once, each
 * naming its field path. Two kinds:
 *  - `validateLabConfig`: what the config means on its own; every command runs it.
 *  - `validateHostFit`: whether this host can create the lab now (routes, addresses,
 *    privileges, /dev/kvm). Only commands that create something (lab:up, image builds) run
 *    it: a running lab's own bridge overlaps its subnet, and teardown binds no port.
 * Facts about the host come in as data.
 */
import { cidrOverlaps, networkOf, parseCidr, parseIPv4, type Cidr } from '../core/cidr.ts';
import type { ConfigProblem } from '../core/errors.ts';
import { parseSize } from '../core/units.ts';
import type { LabConfig } from './lab-config.ts';
import { validateUserChecks } from './user-checks.ts';
import { validateRegistries } from './validate-registries.ts';
import { validateServerProfile } from './validate-server.ts';

export interface HostFacts {
  isRoot: boolean;
  /** net.ipv4.ip_unprivileged_port_start */
  unprivilegedPortStart: number;
  /** Routed destinations other than the default route, e.g. "192.168.1.0/24". */
  routes: string[];
  /** Addresses on the host's interfaces. */
  addresses: { address: string; prefix: number; ifname: string }[];
  kvmDevice: boolean;
}

/** qemu's user-mode network (slirp) as the VM sees it. */
export const QEMU_USER_NET = '10.0.2.0/24';
/** Debian's containerd 1.7 is refused by the kubelet from 1.38 on. */
export const MAX_KUBERNETES_MINOR_WITH_CONTAINERD_1 = 37;
export const REQUIRED_FORWARDS = ['ssh'] as const;

const GiB = 1024 ** 3;

export function validateLabConfig(config: LabConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const problem = (path: string, message: string) => problems.push({ path, message });

  // Resources kubeadm's preflight checks insist on.
  if (config.vm.cpus < 2) problem('vm.cpus', `${config.vm.cpus} is too few: kubeadm needs at least 2`);
  const memory = parseSize(config.vm.memory);
  if (memory !== undefined && memory < 2 * GiB) problem('vm.memory', `${config.vm.memory} is too little: kubeadm needs at least 2GiB (4GiB recommended)`);
  const disk = parseSize(config.vm.disk);
  if (disk !== undefined && disk < 8 * GiB) problem('vm.disk', `${config.vm.disk} is too small: use at least 8GiB (images and etcd live there)`);

  // Kubernetes networks.
  const minor = Number(config.kubernetes.version.split('.')[1]);
  if (config.kubernetes.enabled && minor > MAX_KUBERNETES_MINOR_WITH_CONTAINERD_1 && config.kubernetes.containerd === '1.7') {
    problem(
      'kubernetes.version',
      `${config.kubernetes.version} refuses containerd 1.x, and kubernetes.containerd is 1.7 (Debian ${config.debian.suite}'s): set kubernetes.containerd: "2" (the pinned Debian forky containerd 2, locked by \`npm run image:lock\`), or use 1.${MAX_KUBERNETES_MINOR_WITH_CONTAINERD_1}`,
    );
  }
  const pod = checkCidr(problem, 'kubernetes.podSubnet', config.kubernetes.podSubnet);
  const service = checkCidr(problem, 'kubernetes.serviceSubnet', config.kubernetes.serviceSubnet);
  if (pod && pod.prefix > 24) problem('kubernetes.podSubnet', `${pod.text} is too small: each node takes a /24 from it`);
  if (service && service.prefix < 12) problem('kubernetes.serviceSubnet', `${service.text} is too large: the API server allows at most a /12`);
  if (pod && service && cidrOverlaps(pod, service)) {
    problem('kubernetes.podSubnet', `${pod.text} overlaps kubernetes.serviceSubnet ${service.text}`);
  }
  const labNet = checkCidr(problem, 'libvirt.subnet', config.libvirt.subnet);
  if (labNet && labNet.prefix > 28) problem('libvirt.subnet', `${labNet.text} is too small: use a /24`);
  if (config.libvirt.networkMode === 'bridge' && !config.libvirt.bridge) problem('libvirt.bridge', 'is required with networkMode bridge: name an existing host bridge such as br0');
  for (const [path, own] of [['kubernetes.podSubnet', pod], ['kubernetes.serviceSubnet', service]] as const) {
    if (own && labNet && cidrOverlaps(own, labNet)) problem(path, `${own.text} overlaps libvirt.subnet ${labNet.text}`);
  }
  for (const [path, own] of labNetworks(config)) {
    if (cidrOverlaps(own, QEMU_USER_CIDR)) problem(path, `${own.text} overlaps qemu's user network ${QEMU_USER_NET}: pick a range the host does not use`);
  }

  // Forwards.
  const byHostPort = new Map<number, string>();
  for (const f of config.network.forwards) {
    const path = `network.forwards.${f.name}`;
    const clash = byHostPort.get(f.host);
    if (clash) problem(`${path}.host`, `port ${f.host} is also used by network.forwards.${clash}`);
    byHostPort.set(f.host, f.name);
  }
  if (/[\0\n]/.test(config.stateDir)) problem('stateDir', 'must not contain a newline or NUL');
  for (const name of REQUIRED_FORWARDS) {
    if (!config.network.forwards.some((f) => f.name === name)) problem(`network.forwards.${name}`, 'is required: labsmith reaches the VM through it');
  }
  problems.push(...validateUserChecks(config));
  problems.push(...validateServerProfile(config));
  problems.push(...validateWorkloadsConfig(config));
  problems.push(...validateRegistries(config));
  return problems;
}

/** Workload sources: unique names (they name files in the guest), one origin per secret value. */
function validateWorkloadsConfig(config: LabConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const names = new Map<string, number>();
  const secrets = new Map<string, string>();
  for (const [i, w] of config.workloads.entries()) {
    const clash = names.get(w.name);
    if (clash !== undefined) problems.push({ path: `workloads.${i}.name`, message: `${w.name} is also the name of workloads.${clash}: give one of them a name` });
    names.set(w.name, i);
    for (const [j, s] of w.secrets.entries()) {
      const key = `${s.namespace}/${s.name}`;
      const other = secrets.get(key);
      if (other) problems.push({ path: `workloads.${i}.secrets.${j}.name`, message: `Secret ${key} is also made by ${other}` });
      secrets.set(key, `workloads.${i}.secrets.${j}`);
      if (!Object.keys(s.data).length) problems.push({ path: `workloads.${i}.secrets.${j}.data`, message: 'needs at least one key' });
      for (const [key, from] of Object.entries(s.data)) {
        if ((from.file === undefined) === (from.env === undefined)) problems.push({ path: `workloads.${i}.secrets.${j}.data.${key}`, message: 'give exactly one of file (a host file) or env (an environment variable of labsmith)' });
      }
    }
  }
  return problems;
}

/** Create-time checks: can this host make the lab now? (Not for commands on an existing lab.) */
export function validateHostFit(config: LabConfig, host: HostFacts): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const problem = (path: string, message: string) => problems.push({ path, message });
  if (config.vm.accel === 'kvm' && !host.kvmDevice) problem('vm.accel', 'kvm requested but /dev/kvm does not exist: use "auto" or "tcg"');
  const others: { label: string; cidr: Cidr }[] = [];
  for (const route of host.routes) {
    const c = parseCidr(route);
    if (c && c.prefix > 0) others.push({ label: `the host route ${route}`, cidr: c });
  }
  for (const a of host.addresses) {
    const ip = parseIPv4(a.address);
    if (ip !== undefined && !a.address.startsWith('127.')) others.push({ label: `the host network ${networkOf(ip, a.prefix).text} on ${a.ifname}`, cidr: networkOf(ip, a.prefix) });
  }
  for (const [path, own] of labNetworks(config)) {
    const seen = new Set<string>();
    for (const other of others) {
      if (cidrOverlaps(own, other.cidr) && !seen.has(other.cidr.text)) {
        seen.add(other.cidr.text);
        problem(path, `${own.text} overlaps ${other.label}: pick a range the host does not use`);
      }
    }
  }
  const address = parseIPv4(config.network.hostAddress);
  if (address !== undefined && !config.network.hostAddress.startsWith('127.') && config.network.hostAddress !== '0.0.0.0') {
    const local = host.addresses.some((a) => a.address === config.network.hostAddress);
    if (!local) problem('network.hostAddress', `${config.network.hostAddress} is not an address of this host: use 127.0.0.1 or one of ${host.addresses.map((a) => a.address).join(', ')}`);
  }
  for (const f of config.network.forwards) {
    const path = `network.forwards.${f.name}`;
    if (f.host < host.unprivilegedPortStart && !host.isRoot) {
      problem(
        `${path}.host`,
        `port ${f.host} needs root (ports below ${host.unprivilegedPortStart} are privileged): run as root, or set ${path}.host: ${suggestUnprivilegedPort(f.host)}`,
      );
    }
  }
  return problems;
}

const QEMU_USER_CIDR = parseCidr(QEMU_USER_NET)!;

/** The lab's own networks that must not collide with anything else (the valid ones). */
function labNetworks(config: LabConfig): [string, Cidr][] {
  return (
    [
      ['kubernetes.podSubnet', parseCidr(config.kubernetes.podSubnet)],
      ['kubernetes.serviceSubnet', parseCidr(config.kubernetes.serviceSubnet)],
      ['libvirt.subnet', parseCidr(config.libvirt.subnet)],
    ] as [string, Cidr | undefined][]
  ).filter((entry): entry is [string, Cidr] => entry[1] !== undefined);
}

function checkCidr(problem: (p: string, m: string) => void, path: string, text: string): Cidr | undefined {
  const c = parseCidr(text);
  if (!c) problem(path, `${text} is not a network address (host bits must be zero, e.g. 10.42.0.0/16)`);
  return c;
}

export function suggestUnprivilegedPort(port: number): number {
  return port === 80 ? 8080 : port === 443 ? 8443 : port + 8000;
}

