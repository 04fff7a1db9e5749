/**
 * The restore drill on an OS-only lab, two TCG boots: data written into addons.storageDir
 * through SSH, backed up over SSH, the lab destroyed; then the exported raw image written to a
 * larger disk and booted with an NVMe disk, a vmxnet3 NIC with another MAC and less memory,
 * from the server seed with a static address matched by that MAC: the root grew, the GPT
 * backup header moved to the end, SSH answers, and every restored file's sha256 matches.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Progress } from '../../core/progress.ts';
import { osOnlySourceAtMirrorHead } from '../../images/source.ts';
import { QemuDriver } from '../../lab/drivers/qemu.ts';
import { renderDrillReport, runRestoreDrill } from '../../lab/restore/drill.ts';
import { missingCommand, notRoot, testUnless, throwawayLabConfig, withTempDir } from '../helpers.ts';

async function qemuProcessesUnder(dir: string): Promise<number> {
  let n = 0;
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes('qemu-system') && cmd.includes(dir)) n++;
  }
  return n;
}

const reason = notRoot() ?? missingCommand('mmdebstrap', 'qemu-system-x86_64', 'qemu-img', 'xorriso', 'ssh', 'openssl', 'sgdisk', 'tar');

testUnless(reason, 'drill:restore: backup of a lab, new hardware from the exported raw image and the server seed, every checksum restored', async (t) => {
  t.timeout(90 * 60_000);
  await withTempDir(async (dir) => {
    const config = await throwawayLabConfig('it-drill', dir);
    const progress = new Progress('plain', (line) => process.stderr.write(`[drill] ${line}`));
    const report = await runRestoreDrill({ config, driver: new QemuDriver(), source: await osOnlySourceAtMirrorHead(config), workDir: join(dir, 'drill'), progress });
    t.log(renderDrillReport(report));
    t.deepEqual(report.checks.filter((c) => !c.ok).map((c) => `${c.what}: ${c.detail}`), []);
    t.is(report.filesChecked, 4);
    t.true(report.dataBytes > 8 * 2 ** 20);
    t.true(report.backupBytes >= report.dataBytes);
    t.is(await qemuProcessesUnder(dir), 0, 'no qemu is left');
    t.false(existsSync(config.stateDir), 'the first lab is gone');
    const manifest = JSON.parse(await readFile(join(dir, 'drill', 'backup', 'backup.json'), 'utf8'));
    t.is(manifest.cluster.taken, false);
    t.regex(manifest.image.diskSha256, /^[0-9a-f]{64}$/);
  });
}, { serial: true });
