/** Container log forwarding config, validated by the real `rsyslogd -N1`. */
import { writeFile } from 'node:fs/promises';
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
// The forwarding itself, through a real rsyslogd to a UDP listener, is in host-side.test.ts.
