/**
 * The formats lab.yaml's fields are written in (pure, no zod): each `*Problem` function returns
 * undefined for a well-formed value, or one sentence naming the value, what is wrong and what
 * to write. The schema runs them when lab.yaml is loaded, so a malformed value stops there
 * instead of surfacing later as another field's error.
 */
import { formatIPv4, networkOf, parseIPv4 } from '../core/cidr.ts';
import { parseSize } from '../core/units.ts';
import { LOG_TARGET_PATTERN } from './lab-config.ts';

const q = (v: string) => JSON.stringify(v);

/** Patterns for editors (the JSON Schema); the functions below are the real check. */
export const FORMAT_PATTERNS = {
  ipv4: '^\\d{1,3}(\\.\\d{1,3}){3}$',
  cidr: '^\\d{1,3}(\\.\\d{1,3}){3}/\\d{1,2}$',
  size: '^\\d+(\\.\\d+)?\\s*([KMGTkmgt]|[KMGTkmgt][iI][bB])$',
  kubernetesMinor: '^1\\.\\d+$',
  httpUrl: '^https?://',
  absolutePath: '^/',
  dnsName: '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$',
  dnsLabel: '^[a-z0-9]([a-z0-9-]*[a-z0-9])?$',
  logTarget: LOG_TARGET_PATTERN.source,
  libvirtUri: '^[a-z][a-z0-9]*(\\+[a-z0-9]+)?://',
  ifname: '^[A-Za-z0-9_.-]{1,15}$',
} as const;

/** Why `text` is not a dotted-quad IPv4 address, or undefined. */
function ipv4Why(text: string): string | undefined {
  const parts = text.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d+$/.test(p))) return 'write four numbers 0-255, e.g. 127.0.0.1';
  const big = parts.find((p) => Number(p) > 255);
  if (big !== undefined) return `${big} is more than 255`;
  if (parts.some((p) => p.length > 1 && p.startsWith('0'))) return `a leading zero is read as octal by some tools: write ${parts.map(Number).join('.')}`;
  return undefined;
}

export function ipv4Problem(text: string): string | undefined {
  const why = ipv4Why(text);
  return why && `${q(text)} is not an IPv4 address: ${why}`;
}

/** An IPv4 network: a valid address, a prefix 0-32, and no host bits set. */
export function cidrProblem(text: string): string | undefined {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(text);
  if (!m) return `${q(text)} is not an IPv4 CIDR: write ADDRESS/PREFIX, e.g. 10.42.0.0/16`;
  const address = ipv4Why(m[1]!);
  if (address) return `${q(text)} is not an IPv4 CIDR: ${address}`;
  const prefix = Number(m[2]);
  if (prefix > 32) return `${q(text)} is not an IPv4 CIDR: the prefix ${prefix} is more than 32`;
  const network = networkOf(parseIPv4(m[1]!)!, prefix);
  if (network.base !== parseIPv4(m[1]!)) return `${q(text)} has host bits set: the network is ${formatIPv4(network.base)}/${prefix}`;
  return undefined;
}

const BINARY_UNITS = /^(K|M|G|T|KiB|MiB|GiB|TiB)$/i;

/** A byte size with a binary unit ("4GiB", "512MiB"; K/M/G/T mean the same). */
export function sizeProblem(text: string): string | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$/.exec(text);
  if (!m) return `${q(text)} is not a size: write a number and a unit, e.g. 4GiB or 512MiB`;
  const [, number, unit] = m;
  if (!unit) return `${q(text)} has no unit: write e.g. ${number}GiB or ${number}MiB`;
  if (/^[kmgt]b$/i.test(unit)) return `${q(text)} is a decimal unit: sizes here are binary, write ${number}${unit[0]!.toUpperCase()}iB (1 GiB = 1024³ bytes)`;
  if (!BINARY_UNITS.test(unit)) return `${q(text)} has an unknown unit ${q(unit)}: use KiB, MiB, GiB or TiB`;
  if (!parseSize(text)) return `${q(text)} is zero: give a size`;
  return undefined;
}

/** A Kubernetes minor version: the lock picks the newest patch release of it. */
export function kubernetesMinorProblem(text: string): string | undefined {
  if (/^1\.\d+$/.test(text) && !/^1\.0\d/.test(text)) return undefined;
  const patch = /^v?(1\.\d+)\.\d+$/.exec(text);
  if (patch) return `${q(text)} is a patch release: write the minor version ${patch[1]} (the lock picks the newest patch of it)`;
  const prefixed = /^v(1\.\d+)$/.exec(text);
  if (prefixed) return `${q(text)}: write the version without the v, ${prefixed[1]}`;
  return `${q(text)} is not a Kubernetes minor version: write e.g. 1.37`;
}

/** An http:// or https:// URL with a host (apt mirrors). */
export function httpUrlProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `${q(text)} is not a URL: write e.g. http://deb.debian.org/debian`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `${q(text)} uses ${url.protocol.replace(/:$/, '')}: the mirror must be an http:// or https:// URL`;
  if (!url.hostname) return `${q(text)} has no host: write e.g. http://deb.debian.org/debian`;
  if (url.username || url.password) return `${q(text)} carries credentials: they would be written into the image's apt sources; use a mirror without them`;
  if (url.search || url.hash) return `${q(text)} has a query or fragment: apt appends paths to the mirror URL, give it without them`;
  return undefined;
}

/** An absolute path on the host or in the VM: no relative paths (they depend on where a command runs), no control characters. */
export function absolutePathProblem(text: string, where: 'host' | 'VM'): string | undefined {
  if (text.startsWith('~')) return `${q(text)} is relative: ~ is not expanded in lab.yaml, write the absolute path`;
  if (!text.startsWith('/')) return `${q(text)} is relative: write an absolute path ${where === 'VM' ? 'in the VM' : 'on the host'}, e.g. ${where === 'VM' ? '/var/lib/labsmith/volumes' : `/var/lib/labsmith/${text.replace(/^\.?\/*/, '') || 'lab'}`}`;
  if (/[\0-\x1f\x7f]/.test(text)) return `${q(text)} contains a control character`;
  if (/\s/.test(text)) return `${q(text)} contains whitespace: choose a path without spaces`;
  return undefined;
}

/** The lab directory. A comma is allowed: the qemu driver doubles it in qemu's option syntax (lab/drivers/qemu-args.ts). */
export function stateDirProblem(text: string): string | undefined {
  return absolutePathProblem(text, 'host');
}

/** A lowercase DNS name (RFC 1123): labels of letters, digits and dashes, at most 63 each and 253 in all. */
export function dnsNameProblem(text: string): string | undefined {
  if (text !== text.toLowerCase()) return `${q(text)} has capitals: write it in lowercase, ${text.toLowerCase()}`;
  if (text.endsWith('.')) return `${q(text)} ends with a dot: write ${text.replace(/\.+$/, '')}`;
  if (text.length === 0 || text.length > 253) return `${q(text)} is not a DNS name: 1 to 253 characters`;
  const bad = text.split('.').find((l) => dnsLabelProblem(l));
  return bad === undefined ? undefined : `${q(text)} is not a DNS name: ${q(bad)} ${bad === '' ? 'is an empty label' : 'must be letters, digits and dashes (not at either end), at most 63'}`;
}

/** One DNS label (RFC 1123), as Kubernetes namespace names are. */
export function dnsLabelProblem(text: string): string | undefined {
  return /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(text) ? undefined : `${q(text)} is not a DNS label: lowercase letters, digits and dashes (not at either end), at most 63, no dots`;
}

/** `udp://HOST:PORT` or `tcp://HOST:PORT`, HOST an IPv4 address or a DNS name, PORT 1-65535. */
export function logTargetProblem(text: string): string | undefined {
  const m = LOG_TARGET_PATTERN.exec(text);
  if (!m) return `${q(text)} is not a log target: write udp://HOST:PORT or tcp://HOST:PORT, e.g. udp://10.0.2.2:514`;
  const [, , host, port] = m;
  const hostProblem = /^[\d.]+$/.test(host!) ? ipv4Problem(host!) : dnsNameProblem(host!);
  if (hostProblem) return `${q(text)}: its host ${hostProblem}`;
  if (Number(port) < 1 || Number(port) > 65535) return `${q(text)}: port ${port} is not 1-65535`;
  return undefined;
}

/** A libvirt connection URI: driver[+transport]://[user@][host][:port]/path, e.g. qemu:///system. */
export function libvirtUriProblem(text: string): string | undefined {
  if (!/^[a-z][a-z0-9]*(\+[a-z0-9]+)?:\/\/[^\s]*$/.test(text)) return `${q(text)} is not a libvirt URI: write e.g. qemu:///system or qemu+ssh://user@host/system`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `${q(text)} is not a libvirt URI: write e.g. qemu:///system`;
  }
  return url.pathname.length > 1 ? undefined : `${q(text)} names no instance: end it with /system or /session, e.g. qemu:///system`;
}

/** A Linux interface name (a bridge): 1-15 characters, no slash or whitespace. */
export function ifnameProblem(text: string): string | undefined {
  return /^[A-Za-z0-9_.-]{1,15}$/.test(text) && text !== '.' && text !== '..' ? undefined : `${q(text)} is not an interface name: 1 to 15 letters, digits, dots, dashes or underscores, e.g. br0`;
}

/** A libvirt storage pool name. */
export function poolNameProblem(text: string): string | undefined {
  return /^[A-Za-z0-9_.+-]+$/.test(text) && !text.startsWith('.') ? undefined : `${q(text)} is not a storage pool name: letters, digits, dots, dashes, plus or underscores, e.g. default`;
}

/** A whole number in a range (ports, CPUs, times): the value and the range in the message. */
export function integerProblem(value: number, min: number, max: number, what: string): string | undefined {
  if (!Number.isInteger(value)) return `${value} is not a whole number: ${what} is ${min} to ${max}`;
  if (value < min || value > max) return `${value} is out of range: ${what} is ${min} to ${max}`;
  return undefined;
}
