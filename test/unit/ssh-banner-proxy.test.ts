/**
 * The banner proxy the boot waits connect through (issue 15): before a guest's NIC is up, qemu's
 * forward accepts and then stays silent, so the proxy reopens silent connections, retries refused
 * ones, and keeps the first that answers. Servers here play the forward's three behaviours.
 */
import test from 'ava';
import { createServer, type Server, type Socket } from 'node:net';
import { BANNER_PROXY_SCRIPT, renderBannerProxyArgs, renderSshArgs } from '../../lab/ssh.ts';
import { run } from '../../core/exec.ts';
import { missingCommand, testUnless } from '../helpers.ts';

type Behaviour = 'silent' | 'refuse' | { bannerAfterMs: number };

/** A server whose nth connection behaves as `plan[n]` (the last entry repeats); records what each received. */
async function scriptedServer(plan: Behaviour[]): Promise<{ port: number; received: string[]; close: () => Promise<void> }> {
  const received: string[] = [];
  const sockets: Socket[] = [];
  const server: Server = createServer((socket) => {
    const index = received.push('') - 1;
    sockets.push(socket);
    socket.on('error', () => undefined);
    socket.on('data', (d) => { received[index] += d.toString(); });
    const behaviour = plan[Math.min(index, plan.length - 1)]!;
    if (behaviour === 'refuse') return socket.destroy();
    if (behaviour === 'silent') return;
    setTimeout(() => {
      socket.write('SSH-2.0-scripted\r\n');
      socket.on('data', (d) => socket.write(`echo:${d}`));
    }, behaviour.bannerAfterMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return { port, received, close: () => new Promise((resolve) => { sockets.forEach((s) => s.destroy()); server.close(() => resolve()); }) };
}

const runProxy = (port: number, budgetSeconds: number, input = '') => run(process.execPath, [BANNER_PROXY_SCRIPT, '127.0.0.1', String(port), String(budgetSeconds)], { allowFailure: true, input, timeoutMs: 60_000 });

test('silent connections are reopened and refused ones retried; the first that answers is relayed both ways', async (t) => {
  const server = await scriptedServer(['silent', 'silent', 'refuse', { bannerAfterMs: 0 }]);
  try {
    const r = await runProxy(server.port, 20, 'SSH-2.0-client\r\n');
    t.is(r.exitCode, 0, r.stderr);
    t.is(r.stdout, 'SSH-2.0-scripted\r\necho:SSH-2.0-client', 'run() strips the final newline');
    t.is(server.received.length, 4, 'two silent, one refused, one answered');
    t.deepEqual(server.received.slice(0, 3), ['', '', ''], 'what the client wrote went only to the connection that answered');
    t.is(server.received[3], 'SSH-2.0-client\r\n');
  } finally {
    await server.close();
  }
});

test('a guest slow to send its banner is waited for longer at each attempt, not abandoned forever', async (t) => {
  const server = await scriptedServer([{ bannerAfterMs: 3000 }]);
  try {
    const r = await runProxy(server.port, 30);
    t.is(r.exitCode, 0, r.stderr);
    t.true(r.stdout.startsWith('SSH-2.0-scripted'));
    t.true(server.received.length >= 2 && server.received.length <= 4, `${server.received.length} connections: the window grows past 3 s`);
  } finally {
    await server.close();
  }
});

test('no answer within the budget: exit 1 naming the address', async (t) => {
  const server = await scriptedServer(['silent']);
  try {
    const started = Date.now();
    const r = await runProxy(server.port, 2);
    t.is(r.exitCode, 1);
    t.regex(r.stderr, new RegExp(`no SSH banner from 127\\.0\\.0\\.1:${server.port} within 2s`));
    t.true(Date.now() - started < 6000);
  } finally {
    await server.close();
  }
});

test('bad arguments: a usage line and exit 2', async (t) => {
  const r = await run(process.execPath, [BANNER_PROXY_SCRIPT, '127.0.0.1', 'ssh'], { allowFailure: true });
  t.is(r.exitCode, 2);
  t.regex(r.stderr, /usage: ssh-banner-proxy\.mjs HOST PORT BUDGET_SECONDS/);
});

testUnless(missingCommand('ssh'), 'ssh runs the proxy from its arguments: the banner it reads came through it, and ConnectTimeout outlasts the budget', async (t) => {
  const args = renderBannerProxyArgs(20, '/opt/my node%/bin/node');
  const proxy = args.find((a) => a.startsWith('ProxyCommand='));
  t.true(proxy?.startsWith("ProxyCommand='/opt/my node%%/bin/node' "), 'paths quoted for sh, % doubled for ssh');
  t.true(proxy?.endsWith(' %h %p 20'));
  t.true(args.includes('ConnectTimeout=30'));
  const target = { user: 'nobody', host: '127.0.0.1', port: 0, identityFile: '/nonexistent' };
  const server = await scriptedServer(['silent', { bannerAfterMs: 0 }]);
  try {
    const r = await run('ssh', ['-v', ...renderSshArgs({ ...target, port: server.port }, { bannerWaitSeconds: 10 }), 'true'], { allowFailure: true, timeoutMs: 60_000 });
    t.regex(r.stderr, /Remote protocol version 2\.0, remote software version scripted/, r.stderr);
    t.is(server.received.length, 2, 'the silent connection was dropped and a new one answered');
  } finally {
    await server.close();
  }
});
