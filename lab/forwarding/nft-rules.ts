/**
 * Host port forwarding for labs whose VM sits behind a NAT network (libvirt): nftables
 * rules in a table the lab owns, so adding and removing them never touches anything else.
 * Pure renderers; `nft-apply.ts` runs them.
 */
import { forwardProtocols, type Forward } from '../../config/lab-config.ts';

export interface ForwardPlan {
  labName: string;
  /** Host address the forwards listen on; 0.0.0.0 means every local address. */
  listenAddress: string;
  /** The VM's address on the lab network. */
  vmAddress: string;
  forwards: Forward[];
}

/** nft identifiers: letters, digits and underscores. */
export function tableName(labName: string): string {
  return `labsmith_${labName.replace(/[^A-Za-z0-9_]/g, '_')}`;
}

function destinationMatch(listen: string): string {
  return listen === '0.0.0.0' ? 'fib daddr type local' : `ip daddr ${listen}`;
}

/**
 * DNAT in prerouting (traffic arriving from other hosts) and output (traffic this host
 * makes, e.g. curl to 127.0.0.1); masquerade what leaves for the VM with a loopback source.
 * `delete table` first makes the file idempotent (the caller creates the table if missing).
 */
export function renderForwardRuleset(plan: ForwardPlan): string {
  const table = tableName(plan.labName);
  const match = destinationMatch(plan.listenAddress);
  const dnat = plan.forwards.flatMap((f) => forwardProtocols(f).map((p) => `    ${match} ${p} dport ${f.host} dnat to ${plan.vmAddress}:${f.guest} comment "${f.name}"`));
  return [
    `table ip ${table}`,
    `delete table ip ${table}`,
    `table ip ${table} {`,
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    ...dnat,
    '  }',
    '  chain output {',
    '    type nat hook output priority -100; policy accept;',
    ...dnat,
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    ip saddr 127.0.0.0/8 ip daddr ${plan.vmAddress} masquerade`,
    '  }',
    '}',
    '',
  ].join('\n');
}

export interface NftPortOwner {
  table: string;
  port: number;
}

/** Which labsmith tables already forward these host ports (from `nft -j list ruleset`). */
export function findForwardedPorts(rulesetJson: string, exceptTable: string): NftPortOwner[] {
  let parsed: { nftables?: Record<string, unknown>[] };
  try {
    parsed = JSON.parse(rulesetJson);
  } catch {
    return [];
  }
  const owners: NftPortOwner[] = [];
  for (const item of parsed.nftables ?? []) {
    const rule = item.rule as { table?: string; expr?: unknown[] } | undefined;
    if (!rule?.table?.startsWith('labsmith_') || rule.table === exceptTable) continue;
    for (const expr of rule.expr ?? []) {
      const m = (expr as { match?: { left?: { payload?: { protocol?: string; field?: string } }; right?: unknown } }).match;
      const protocol = m?.left?.payload?.protocol;
      if ((protocol === 'tcp' || protocol === 'udp') && m?.left?.payload?.field === 'dport' && typeof m.right === 'number') {
        owners.push({ table: rule.table, port: m.right });
      }
    }
  }
  return owners;
}
