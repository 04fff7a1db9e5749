/**
 * The server profile's semantic checks (pure, issue 11): a NIC matched by MAC or driver, a
 * static address with prefix and gateway outside the cluster's own subnets, DNS servers, and
 * the user's own SSH keys. Every problem names its field path.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { networkOf, parseCidr, parseIPv4 } from '../core/cidr.ts';
import type { ConfigProblem } from '../core/errors.ts';
import type { LabConfig } from './lab-config.ts';

export function validateServerProfile(config: LabConfig): ConfigProblem[] {
  const server = config.server;
  if (!server) return [];
  const problems: ConfigProblem[] = [];
  const problem = (path: string, message: string) => problems.push({ path, message });
  const net = server.network;

  if (server.authorizedKeyFiles.length === 0) {
    problem('server.authorizedKeyFiles', "is required: list files with your own SSH public keys (e.g. [~/.ssh/id_ed25519.pub]); the lab's generated key is not used on the server");
  }
  if (!net.match.macAddress) problem('server.network.match.macAddress', "is required: the server's NIC is found by its MAC address (`ip link` on the machine), since interface names change with the hardware");
  if (!net.ipv4 && !net.ipv6) problem('server.network', 'needs a static address: ipv4 and/or ipv6 with address and gateway');
  if ((net.ipv4 || net.ipv6) && net.dns.servers.length === 0) problem('server.network.dns.servers', 'is required with a static address: list the resolvers, e.g. [192.0.2.53]');
  for (const [i, s] of net.dns.servers.entries()) if (!isIPv4(s) && !isIPv6(s)) problem(`server.network.dns.servers.${i}`, `${s} is not an IP address`);

  if (net.ipv4) {
    const path = 'server.network.ipv4';
    const [addr, prefixText] = net.ipv4.address.split('/');
    const ip = parseIPv4(addr ?? '');
    const prefix = Number(prefixText);
    if (ip === undefined) problem(`${path}.address`, `${net.ipv4.address} is not an IPv4 address with a prefix, e.g. 203.0.113.10/24`);
    else if (prefixText === undefined) problem(`${path}.address`, `${net.ipv4.address} has no prefix length: write it as ${addr}/24 (or the prefix your network uses)`);
    else if (!Number.isInteger(prefix) || prefix < 1 || prefix > 32) problem(`${path}.address`, `/${prefixText} is not an IPv4 prefix length (1-32)`);
    else {
      for (const [field, text] of [['kubernetes.podSubnet', config.kubernetes.podSubnet], ['kubernetes.serviceSubnet', config.kubernetes.serviceSubnet]] as const) {
        const c = parseCidr(text);
        if (c && inside(ip, c.base, c.prefix)) problem(`${path}.address`, `${addr} is inside ${field} ${text}: pods and Services would shadow the server's own address; change one of them`);
      }
      if (!net.ipv4.gateway) problem(`${path}.gateway`, 'is required: the default gateway of the server network');
      else {
        const gw = parseIPv4(net.ipv4.gateway);
        if (gw === undefined) problem(`${path}.gateway`, `${net.ipv4.gateway} is not an IPv4 address`);
        else if (!inside(gw, networkOf(ip, prefix).base, prefix)) problem(`${path}.gateway`, `${net.ipv4.gateway} is not in ${networkOf(ip, prefix).text}: the gateway must be on the server's own network`);
      }
    }
  }
  if (net.ipv6) {
    const path = 'server.network.ipv6';
    const [addr, prefixText] = net.ipv6.address.split('/');
    if (!isIPv6(addr ?? '')) problem(`${path}.address`, `${net.ipv6.address} is not an IPv6 address with a prefix, e.g. 2001:db8::10/64`);
    else if (prefixText === undefined) problem(`${path}.address`, `${net.ipv6.address} has no prefix length: write it as ${addr}/64 (or the prefix your network uses)`);
    else if (!/^\d+$/.test(prefixText) || Number(prefixText) < 1 || Number(prefixText) > 128) problem(`${path}.address`, `/${prefixText} is not an IPv6 prefix length (1-128)`);
    if (!net.ipv6.gateway) problem(`${path}.gateway`, 'is required: the default IPv6 gateway (often a link-local fe80:: address)');
    else if (!isIPv6(net.ipv6.gateway)) problem(`${path}.gateway`, `${net.ipv6.gateway} is not an IPv6 address`);
  }
  return problems;
}

function inside(ip: number, base: number, prefix: number): boolean {
  return networkOf(ip, prefix).base === base;
}
