/**
 * Semantic checks on lab.yaml `checks:` (pure): every port a check dials is the host side of
 * one of the lab's forwards, with the protocol it needs. Each problem names its field path.
 */
import type { ConfigProblem } from '../core/errors.ts';
import type { Forward, LabConfig, UserCheck } from './lab-config.ts';

/** The host port an http check dials: the URL's port, else 80/443 by scheme. */
export function httpCheckPort(url: string): number {
  const u = new URL(url);
  return u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
}

function dialled(check: UserCheck): { field: string; port: number; protocols: ('tcp' | 'udp')[] } | undefined {
  switch (check.type) {
    case 'http':
      return { field: 'url', port: httpCheckPort(check.url), protocols: ['tcp'] };
    case 'tcp':
    case 'smtp':
      return { field: 'port', port: check.port, protocols: ['tcp'] };
    case 'dns':
      return { field: 'port', port: check.port, protocols: check.transports };
    case 'command':
      return undefined;
  }
}

const carries = (f: Forward, protocol: 'tcp' | 'udp') => (f.protocol ?? 'tcp') === protocol || f.protocol === 'both';

export function validateUserChecks(config: LabConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const listed = config.network.forwards.map((f) => `${f.host} (${f.name}, ${f.protocol ?? 'tcp'})`).join(', ');
  config.checks.forEach((check, i) => {
    const target = dialled(check);
    if (!target) return;
    const path = `checks.${i}.${target.field}`;
    const forwards = config.network.forwards.filter((f) => f.host === target.port);
    if (!forwards.length) {
      problems.push({ path, message: `port ${target.port} is not the host side of any of network.forwards (${listed}): forward it, or use a forwarded host port` });
      return;
    }
    for (const protocol of target.protocols) {
      if (!forwards.some((f) => carries(f, protocol))) {
        problems.push({ path, message: `port ${target.port} is forwarded for ${forwards.map((f) => f.protocol ?? 'tcp').join(', ')} only, the check needs ${protocol}: set network.forwards.${forwards[0]!.name}.protocol: both` });
      }
    }
  });
  return problems;
}
