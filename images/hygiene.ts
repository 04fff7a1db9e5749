/**
 * Image hygiene: nothing per-machine, secret or from the build host may be baked into an
 * image. A pure check over the root filesystem's tar listing; the build fails on any finding.
 */
import type { TarEntry } from '../core/tar.ts';

export interface HygieneFinding {
  path: string;
  problem: string;
}

/** Members whose contents the check needs. */
export const HYGIENE_CONTENT_PATHS = new Set(['etc/machine-id', 'etc/hostname']);

export function checkImageHygiene(entries: TarEntry[], buildHost: { hostname: string }): HygieneFinding[] {
  const findings: HygieneFinding[] = [];
  const byPath = new Map(entries.map((e) => [e.path, e]));
  const add = (path: string, problem: string) => findings.push({ path, problem });

  for (const e of entries) {
    if (/^etc\/ssh\/ssh_host_.*key/.test(e.path)) add(e.path, 'SSH host key baked in: every lab would share it');
    else if (e.path.startsWith('var/lib/cloud/') ) add(e.path, 'cloud-init state left over: first boot would be skipped');
    else if (/^var\/lib\/apt\/lists\/[^/]+$/.test(e.path) && e.type === 'file' && !['lock'].includes(e.path.split('/').pop()!))
      add(e.path, 'apt list left in the image');
    else if (/^var\/cache\/apt\/.*\.(bin|deb)$/.test(e.path)) add(e.path, 'apt cache left in the image');
    else if (e.path.startsWith('var/log/') && e.type === 'file' && e.size > 0) add(e.path, 'log file from the build');
    else if (/^(tmp|var\/tmp)\/./.test(e.path)) add(e.path, 'temporary file from the build');
    else if (e.path === 'root/.bash_history') add(e.path, 'shell history from the build');
    else if (e.path === 'var/lib/dbus/machine-id' && e.type === 'file') add(e.path, 'D-Bus machine id baked in');
  }
  const machineId = byPath.get('etc/machine-id');
  if (!machineId) add('etc/machine-id', 'missing: systemd needs an empty file to detect first boot');
  else if (machineId.size > 0) add('etc/machine-id', 'not empty: every lab would share one machine id');
  const hostname = byPath.get('etc/hostname')?.content?.toString().trim();
  if (hostname && hostname === buildHost.hostname && hostname !== 'localhost') add('etc/hostname', `contains the build host's name "${hostname}"`);
  return findings;
}
