/** Applies and removes a lab's forwarding table with nft (effectful). */
import { writeFile } from 'node:fs/promises';
import { LabError } from '../../core/errors.ts';
import { run } from '../../core/exec.ts';
import { probePort, probeUdpPort } from '../ports.ts';
import { forwardProtocols } from '../../config/lab-config.ts';
import { findForwardedPorts, renderForwardRuleset, tableName, type ForwardPlan } from './nft-rules.ts';

/**
 * By absolute path: npm puts node_modules/.bin on PATH, and a JavaScript package there is
 * also called `nft`. Runs inside a network namespace when `netns` is given (tests).
 */
export const NFT = '/usr/sbin/nft';

function nft(args: string[], opts: { netns?: string; input?: string } = {}) {
  const [cmd, argv] = opts.netns ? ['ip', ['netns', 'exec', opts.netns, NFT, ...args]] : [NFT, args];
  return run(cmd, argv, { input: opts.input, hint: 'nftables must be installed and usable (root): npm run doctor' });
}

export async function applyForwards(plan: ForwardPlan, opts: { netns?: string; outboundInterface?: string } = {}): Promise<void> {
  const ruleset = await nft(['-j', 'list', 'ruleset'], opts);
  const taken = findForwardedPorts(ruleset.stdout, tableName(plan.labName)).filter((o) => plan.forwards.some((f) => f.host === o.port));
  if (taken.length) {
    const ports = [...new Set(taken.map((t) => t.port))];
    throw new LabError(
      `host port${ports.length > 1 ? 's' : ''} ${ports.join(', ')} already forwarded by ${[...new Set(taken.map((t) => t.table))].join(', ')}`,
      'another lab owns them: stop it (npm run lab:down -- --config ITS-FILE) or pick other host ports in network.forwards',
    );
  }
  if (!opts.netns) {
    for (const f of plan.forwards) {
      for (const protocol of forwardProtocols(f)) {
        const code = await (protocol === 'udp' ? probeUdpPort : probePort)(plan.listenAddress, f.host);
        if (code === 'EADDRINUSE') throw new LabError(`host ${protocol.toUpperCase()} port ${f.host} on ${plan.listenAddress} is in use by a local service`, `stop it or set network.forwards.${f.name}.host to a free port`);
      }
    }
  }
  // Locally generated traffic to 127.0.0.1 may only leave through the lab network with this set.
  if (opts.outboundInterface) await setRouteLocalnet(opts.outboundInterface, opts.netns);
  await nft(['-f', '-'], { ...opts, input: renderForwardRuleset(plan) });
}

export async function removeForwards(labName: string, opts: { netns?: string } = {}): Promise<void> {
  const table = tableName(labName);
  const tables = await nft(['list', 'tables'], opts);
  if (tables.stdout.split('\n').some((l) => l.trim() === `table ip ${table}`)) await nft(['delete', 'table', 'ip', table], opts);
}

async function setRouteLocalnet(iface: string, netns?: string): Promise<void> {
  if (netns) await run('ip', ['netns', 'exec', netns, 'sysctl', '-qw', `net.ipv4.conf.${iface}.route_localnet=1`]);
  else await writeFile(`/proc/sys/net/ipv4/conf/${iface}/route_localnet`, '1');
}
