/**
 * The forwarding table applied for real in network namespaces: a "host" with the rules, a
 * "vm" behind a veth pair with listeners standing in for the NodePorts, and a "client" on
 * another link. Forwarded ports reach the VM from the client and from the host itself;
 * other ports do not; removal leaves no table behind.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { run } from '../../core/exec.ts';
import { applyForwards, NFT, removeForwards } from '../../lab/forwarding/nft-apply.ts';
import { findForwardedPorts, renderForwardRuleset, tableName } from '../../lab/forwarding/nft-rules.ts';
import { missingCommand, notRoot, testUnless } from '../helpers.ts';

const plan = {
  labName: 'nft-test',
  listenAddress: '0.0.0.0',
  vmAddress: '10.231.0.2',
  forwards: [
    { name: 'http', host: 80, guest: 30080 },
    { name: 'https', host: 443, guest: 30443 },
  ],
};

test('ruleset (golden): one table per lab, DNAT for incoming and local traffic, masquerade for loopback sources', (t) => {
  t.is(
    renderForwardRuleset({ ...plan, listenAddress: '127.0.0.1' }),
    `table ip labsmith_nft_test
delete table ip labsmith_nft_test
table ip labsmith_nft_test {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr 127.0.0.1 tcp dport 80 dnat to 10.231.0.2:30080 comment "http"
    ip daddr 127.0.0.1 tcp dport 443 dnat to 10.231.0.2:30443 comment "https"
  }
  chain output {
    type nat hook output priority -100; policy accept;
    ip daddr 127.0.0.1 tcp dport 80 dnat to 10.231.0.2:30080 comment "http"
    ip daddr 127.0.0.1 tcp dport 443 dnat to 10.231.0.2:30443 comment "https"
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr 127.0.0.0/8 ip daddr 10.231.0.2 masquerade
  }
}
`,
  );
  t.regex(renderForwardRuleset(plan), /fib daddr type local tcp dport 80 dnat to 10.231.0.2:30080/);
});

const reason = notRoot() ?? missingCommand(NFT, 'ip', 'curl', 'python3');
const suffix = `${process.pid % 100000}`;
const ns = { host: `lsh${suffix}`, vm: `lsv${suffix}`, client: `lsc${suffix}` };
const inNs = (name: string, ...cmd: string[]) => run('ip', ['netns', 'exec', name, ...cmd.map((c) => (c === 'nft' ? NFT : c))]);

async function setUpTopology(): Promise<void> {
  for (const n of Object.values(ns)) await run('ip', ['netns', 'add', n]);
  await run('ip', ['link', 'add', `h${suffix}`, 'netns', ns.host, 'type', 'veth', 'peer', 'name', `v${suffix}`, 'netns', ns.vm]);
  await run('ip', ['link', 'add', `hc${suffix}`, 'netns', ns.host, 'type', 'veth', 'peer', 'name', `c${suffix}`, 'netns', ns.client]);
  const cmds: [string, string[]][] = [
    [ns.host, ['ip', 'addr', 'add', '10.231.0.1/24', 'dev', `h${suffix}`]],
    [ns.host, ['ip', 'addr', 'add', '10.232.0.1/24', 'dev', `hc${suffix}`]],
    [ns.vm, ['ip', 'addr', 'add', '10.231.0.2/24', 'dev', `v${suffix}`]],
    [ns.client, ['ip', 'addr', 'add', '10.232.0.2/24', 'dev', `c${suffix}`]],
  ];
  for (const [n, c] of cmds) await inNs(n, ...c);
  for (const [n, dev] of [[ns.host, `h${suffix}`], [ns.host, `hc${suffix}`], [ns.host, 'lo'], [ns.vm, `v${suffix}`], [ns.vm, 'lo'], [ns.client, `c${suffix}`], [ns.client, 'lo']] as const) {
    await inNs(n, 'ip', 'link', 'set', dev, 'up');
  }
  await inNs(ns.vm, 'ip', 'route', 'add', 'default', 'via', '10.231.0.1');
  await inNs(ns.client, 'ip', 'route', 'add', 'default', 'via', '10.232.0.1');
  await inNs(ns.host, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
}

/** Listeners in the VM namespace that answer with their own port, standing in for NodePorts. */
function startListeners(ports: number[]): ChildProcess {
  const script = `
import socketserver, threading, sys
class H(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.sendall(("vm:%d\\n" % self.server.server_address[1]).encode())
for p in [${ports.join(',')}]:
    s = socketserver.ThreadingTCPServer(("0.0.0.0", p), H)
    threading.Thread(target=s.serve_forever, daemon=True).start()
print("ready", flush=True)
threading.Event().wait(120)
`;
  return spawn('ip', ['netns', 'exec', ns.vm, 'python3', '-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
}

async function fetchFrom(namespace: string, url: string): Promise<string> {
  const r = await run('ip', ['netns', 'exec', namespace, 'curl', '-s', '--max-time', '3', '--http0.9', url], { allowFailure: true });
  return r.exitCode === 0 ? r.stdout.trim() : `curl exit ${r.exitCode}`;
}

testUnless(reason, 'forwarded ports reach the VM from other hosts and from the host itself; others do not; removal leaves nothing', async (t) => {
  let listeners: ChildProcess | undefined;
  try {
    await setUpTopology();
    listeners = startListeners([30080, 30443, 30999]);
    await new Promise<void>((resolve, reject) => {
      listeners!.stdout!.once('data', () => resolve());
      listeners!.once('exit', (code) => reject(new Error(`listeners exited ${code}`)));
    });
    // Before: nothing is forwarded.
    t.is(await fetchFrom(ns.client, 'http://10.232.0.1:80/'), 'curl exit 7');

    await applyForwards(plan, { netns: ns.host, outboundInterface: `h${suffix}` });
    await applyForwards(plan, { netns: ns.host, outboundInterface: `h${suffix}` }); // idempotent
    const tables = await inNs(ns.host, 'nft', 'list', 'tables');
    t.is(tables.stdout.trim().split('\n').filter((l) => l.includes('labsmith_')).length, 1);

    t.is(await fetchFrom(ns.client, 'http://10.232.0.1:80/'), 'vm:30080');
    t.is(await fetchFrom(ns.client, 'http://10.232.0.1:443/'), 'vm:30443');
    t.is(await fetchFrom(ns.host, 'http://127.0.0.1:80/'), 'vm:30080', 'locally generated traffic is forwarded too');
    t.is(await fetchFrom(ns.client, 'http://10.232.0.1:30999/'), 'curl exit 7', 'an unrelated port is not forwarded');
    t.is(await fetchFrom(ns.client, 'http://10.232.0.1:8080/'), 'curl exit 7');

    // Another lab asking for the same host ports is refused, naming the owner.
    const clash = await t.throwsAsync(applyForwards({ ...plan, labName: 'other' }, { netns: ns.host }));
    t.regex(clash!.message, /host ports 80, 443 already forwarded by labsmith_nft_test/);
    const ruleset = await inNs(ns.host, 'nft', '-j', 'list', 'ruleset');
    t.deepEqual(findForwardedPorts(ruleset.stdout, 'labsmith_other').map((o) => o.port).sort(), [443, 443, 80, 80].sort());

    await removeForwards(plan.labName, { netns: ns.host });
    await removeForwards(plan.labName, { netns: ns.host }); // idempotent
    t.is((await inNs(ns.host, 'nft', 'list', 'tables')).stdout.trim(), '');
    t.is(await fetchFrom(ns.client, 'http://10.232.0.1:80/'), 'curl exit 7');
  } finally {
    listeners?.kill();
    for (const n of Object.values(ns)) await run('ip', ['netns', 'del', n], { allowFailure: true });
  }
  t.is(tableName('nft-test'), 'labsmith_nft_test');
});
