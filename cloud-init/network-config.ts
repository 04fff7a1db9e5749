/**
 * The server's network-config (pure, issue 11): cloud-init network config v2 with a static
 * IPv4/IPv6 address on the NIC found by its MAC address. cloud-init renames only NICs matched
 * by MAC that have a set-name, and its networkd renderer matches on both, so the NIC gets a
 * stable name of ours (`uplink`) whatever the kernel called it on this hardware.
 */
import { stringify } from 'yaml';
import type { ServerProfile } from '../config/lab-config.ts';

export const SERVER_NIC_NAME = 'uplink';

export function renderServerNetworkConfig(network: ServerProfile['network']): string {
  const routes = [
    ...(network.ipv4?.gateway ? [{ to: '0.0.0.0/0', via: network.ipv4.gateway }] : []),
    ...(network.ipv6?.gateway ? [{ to: '::/0', via: network.ipv6.gateway }] : []),
  ];
  const nic: Record<string, unknown> = {
    match: { macaddress: network.match.macAddress },
    'set-name': SERVER_NIC_NAME,
    dhcp4: false,
    dhcp6: false,
    // A static IPv6 address is the whole configuration: no router advertisements on the server.
    ...(network.ipv6 ? { 'accept-ra': false } : {}),
    addresses: [network.ipv4?.address, network.ipv6?.address].filter(Boolean),
    // Default routes, not gateway4/gateway6: cloud-init deprecates those (22.4), and a deprecation is a recoverable error in `cloud-init status`.
    ...(routes.length ? { routes } : {}),
    nameservers: { addresses: network.dns.servers, ...(network.dns.search.length ? { search: network.dns.search } : {}) },
  };
  // Every string quoted: cloud-init's YAML 1.1 reads an unquoted 52:54:00:12:34:56 as a base-60 integer.
  return stringify({ version: 2, ethernets: { [SERVER_NIC_NAME]: nic } }, { defaultStringType: 'QUOTE_DOUBLE', defaultKeyType: 'PLAIN' });
}
