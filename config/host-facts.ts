/** Reads the facts config validation needs from this host (effectful). */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { run } from '../core/exec.ts';
import type { HostFacts } from './validate.ts';

interface IpRoute {
  dst?: string;
}
interface IpAddr {
  ifname: string;
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

export async function readHostFacts(): Promise<HostFacts> {
  const [routes, addrs, portStart] = await Promise.all([
    run('ip', ['-j', '-4', 'route', 'show', 'table', 'all'], { allowFailure: true }),
    run('ip', ['-j', '-4', 'addr'], { allowFailure: true }),
    readFile('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').catch(() => '1024'),
  ]);
  return {
    isRoot: process.getuid?.() === 0,
    unprivilegedPortStart: Number(portStart.trim()) || 1024,
    routes: parseIpRoutes(routes.stdout),
    addresses: parseIpAddrs(addrs.stdout),
    kvmDevice: existsSync('/dev/kvm'),
  };
}

/** Destinations from `ip -j route`, without default, local, broadcast and loopback entries. */
export function parseIpRoutes(json: string): string[] {
  let parsed: (IpRoute & { type?: string })[];
  try {
    parsed = JSON.parse(json || '[]');
  } catch {
    return [];
  }
  const out = new Set<string>();
  for (const r of parsed) {
    if (!r.dst || r.dst === 'default' || (r.type && r.type !== 'unicast')) continue;
    if (r.dst.startsWith('127.')) continue;
    out.add(r.dst.includes('/') ? r.dst : `${r.dst}/32`);
  }
  return [...out];
}

export function parseIpAddrs(json: string): HostFacts['addresses'] {
  let parsed: IpAddr[];
  try {
    parsed = JSON.parse(json || '[]');
  } catch {
    return [];
  }
  return parsed.flatMap((i) => (i.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => ({ address: a.local, prefix: a.prefixlen, ifname: i.ifname })));
}
