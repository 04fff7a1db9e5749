/**
 * The suite's host side for real: TCP outcomes against a network namespace with nftables
 * (open, closed, dropped: the three answers the egress checks tell apart), the public target
 * on a documentation address, and the syslog listener fed by a real rsyslog.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { get } from 'node:https';
import { join } from 'node:path';
import { run } from '../../core/exec.ts';
import { renderRsyslogForwarding } from '../../cloud-init/addons/rsyslog.ts';
import { parseSyslogMessage, startPublicTarget, startSyslogListener } from '../../lab/acceptance/cluster/host-side.ts';
import { missingCommand, notRoot, tcpProbe, testUnless, withTempDir } from '../helpers.ts';
import test from 'ava';

const NFT = '/usr/sbin/nft';
const suffix = `${process.pid % 100000}`;
const netns = `lst${suffix}`;
const hostIf = `lsp${suffix}`;

testUnless(notRoot() ?? missingCommand(NFT, 'ip', 'python3'), 'TCP probes tell a connection, a refusal and an nftables drop apart', async (t) => {
  let listener: ChildProcess | undefined;
  try {
    await run('ip', ['netns', 'add', netns]);
    await run('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', `lsq${suffix}`, 'netns', netns]);
    await run('ip', ['addr', 'add', '10.234.0.1/30', 'dev', hostIf]);
    await run('ip', ['link', 'set', hostIf, 'up']);
    for (const c of [['ip', 'addr', 'add', '10.234.0.2/30', 'dev', `lsq${suffix}`], ['ip', 'link', 'set', `lsq${suffix}`, 'up'], ['ip', 'link', 'set', 'lo', 'up']]) await run('ip', ['netns', 'exec', netns, ...c]);
    await run('ip', ['netns', 'exec', netns, NFT, '-f', '-'], { input: 'table inet drop_test {\n  chain input {\n    type filter hook input priority filter; policy accept;\n    tcp dport 9443 drop\n  }\n}\n' });
    const script = 'import socket,time\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(("0.0.0.0",8443))\ns.listen()\nprint("ready",flush=True)\ntime.sleep(60)\n';
    listener = spawn('ip', ['netns', 'exec', netns, 'python3', '-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => listener!.stdout!.once('data', () => resolve()));
    t.is(await tcpProbe('10.234.0.2', 8443, 1500), 'connected');
    t.is(await tcpProbe('10.234.0.2', 9000, 1500), 'refused', 'nothing listens: the packet got there');
    t.is(await tcpProbe('10.234.0.2', 9443, 1500), 'timeout', 'dropped by the rule: no answer at all');
  } finally {
    listener?.kill();
    await run('ip', ['link', 'del', hostIf], { allowFailure: true });
    await run('ip', ['netns', 'del', netns], { allowFailure: true });
  }
});

testUnless(notRoot() ?? missingCommand('ip', 'openssl'), 'the public target serves HTTPS and HTTP on a documentation address and takes the address away again', async (t) => {
  await withTempDir(async (dir) => {
    const address = '203.0.113.77';
    const target = await startPublicTarget(dir, { address, httpsPort: 0, httpPort: 0 });
    try {
      t.is(await tcpProbe(address, target.httpsPort), 'connected');
      t.is(await tcpProbe(address, target.httpPort), 'connected');
      const body = await new Promise<string>((resolve, reject) => {
        get({ host: address, port: target.httpsPort, rejectUnauthorized: false }, (res) => {
          let b = '';
          res.on('data', (c) => (b += c));
          res.on('end', () => resolve(b));
        }).on('error', reject);
      });
      t.is(body, 'labsmith public target\n');
    } finally {
      await target.close();
    }
    const lo = await run('ip', ['-4', '-o', 'addr', 'show', 'dev', 'lo']);
    t.false(lo.stdout.includes(address), 'the address is removed');
  });
});

test('syslog lines are split into tag and message', (t) => {
  t.deepEqual(parseSyslogMessage('<14>2026-11-26T15:00:00Z mail mail/web-7d9f: hello from smtp'), { tag: 'mail/web-7d9f', message: 'hello from smtp', raw: '<14>2026-11-26T15:00:00Z mail mail/web-7d9f: hello from smtp' });
  t.is(parseSyslogMessage('not syslog'), undefined);
});

testUnless(missingCommand('rsyslogd'), "a container log line forwarded by the node's rsyslog config reaches the suite's listener tagged <namespace>/<pod>", async (t) => {
  await withTempDir(async (dir) => {
    const listener = await startSyslogListener('127.0.0.1', 0);
    await mkdir(join(dir, 'containers'));
    await mkdir(join(dir, 'work'));
    const conf = join(dir, 'rsyslog.conf');
    await writeFile(conf, renderRsyslogForwarding({ target: { host: '127.0.0.1', port: listener.port, protocol: 'udp' }, glob: join(dir, 'containers', '*.log'), workDirectory: join(dir, 'work') }));
    const daemon = spawn('rsyslogd', ['-n', '-f', conf, '-i', join(dir, 'rsyslogd.pid')], { stdio: 'ignore' });
    try {
      const file = join(dir, 'containers', 'logline-ab12cd-3_labsmith-e2e-ab12cd_probe-0123abcd.log');
      await writeFile(file, '');
      const token = 'labsmith-e2e-ab12cd-token';
      const appender = setInterval(() => void appendFile(file, `2026-11-26T15:00:00.000000000Z stdout F ${token}\n`), 500);
      const got = await listener.waitFor((m) => m.message.includes(token), 30_000);
      clearInterval(appender);
      t.truthy(got, listener.messages.map((m) => m.raw).join('\n'));
      t.is(got?.tag, 'labsmith-e2e-ab12cd/logline-ab12cd-3');
    } finally {
      daemon.kill();
      await listener.close();
    }
  });
});
