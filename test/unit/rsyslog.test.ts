/**
 * Container log forwarding config: validated by the real `rsyslogd -N1`, then run for real
 * in the foreground on a temp directory, with a UDP listener on loopback standing in for
 * the remote syslog server.
 */
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../core/exec.ts';
import { renderRsyslogForwarding } from '../../cloud-init/addons/rsyslog.ts';
import { missingCommand, testUnless, withTempDir } from '../helpers.ts';

const noRsyslog = missingCommand('rsyslogd');

testUnless(noRsyslog, 'the forwarding config passes `rsyslogd -N1`, and a broken one does not', async (t) => {
  await withTempDir(async (dir) => {
    await writeFile(join(dir, 'ok.conf'), renderRsyslogForwarding({ target: { host: 'logs.example.net', port: 514, protocol: 'udp' }, workDirectory: dir }));
    const ok = await run('rsyslogd', ['-N1', '-f', join(dir, 'ok.conf')], { allowFailure: true });
    t.is(ok.exitCode, 0, ok.stderr);
    await writeFile(join(dir, 'bad.conf'), renderRsyslogForwarding({ target: { host: 'x', port: 514, protocol: 'udp' } }).replace('re_extract($msg', 're_extract($msg,,'));
    const bad = await run('rsyslogd', ['-N1', '-f', join(dir, 'bad.conf')], { allowFailure: true });
    t.not(bad.exitCode, 0);
  });
});

testUnless(noRsyslog, 'a container log line reaches the syslog target tagged with its namespace and pod', async (t) => {
  await withTempDir(async (dir) => {
    const listener = createSocket('udp4');
    const received: string[] = [];
    listener.on('message', (m) => received.push(m.toString()));
    await new Promise<void>((r) => listener.bind(0, '127.0.0.1', r));
    const port = (listener.address() as AddressInfo).port;
    await mkdir(join(dir, 'containers'));
    await mkdir(join(dir, 'work'));
    const conf = join(dir, 'rsyslog.conf');
    await writeFile(conf, renderRsyslogForwarding({ target: { host: '127.0.0.1', port, protocol: 'udp' }, glob: join(dir, 'containers', '*.log'), workDirectory: join(dir, 'work') }));
    const daemon = spawn('rsyslogd', ['-n', '-f', conf, '-i', join(dir, 'rsyslogd.pid')], { stdio: 'ignore' });
    try {
      const file = join(dir, 'containers', 'web-7d9f_mail_smtp-0123abcd.log');
      await writeFile(file, '');
      const deadline = Date.now() + 30_000;
      // Keep appending until rsyslog has picked the file up (it may start after the first line).
      for (let i = 0; received.length < 2 && Date.now() < deadline; i++) {
        await appendFile(file, `2026-11-26T15:00:00.000000000Z stdout F hello from smtp ${i}\n`);
        await appendFile(file, `{"log":"json line ${i}\\n","stream":"stderr","time":"2026-11-26T15:00:00Z"}\n`);
        await new Promise((r) => setTimeout(r, 500));
      }
      t.true(received.some((m) => / mail\/web-7d9f: hello from smtp \d+$/.test(m)), received.join('\n'));
      t.true(received.some((m) => / mail\/web-7d9f: json line \d+/.test(m)), received.join('\n'));
    } finally {
      daemon.kill();
      listener.close();
    }
  });
});
