/**
 * The restore drill on an OS-only lab, two TCG boots: data written into addons.storageDir
 * through SSH, backed up over SSH, the lab destroyed; then the exported raw image written to a
 * larger disk and booted with an NVMe disk, a vmxnet3 NIC with another MAC and less memory,
 * from the server seed with a static address matched by that MAC: the root grew, the GPT
 * backup header moved to the end, SSH answers, and every restored file's sha256 matches; then
 * the acceptance suite against that restored machine (no third boot): its host checks over SSH
 * with the operator's key, the placeholder ingress through its forwarded ports, the drill's
 * data check and a lab.yaml `command` check of a restored file's sha256, the cluster checks
 * reported as not run (no Kubernetes in the OS-only image), never as passed.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Progress } from '../../core/progress.ts';
import { osOnlySourceAtMirrorHead } from '../../images/source.ts';
import { QemuDriver } from '../../lab/drivers/qemu.ts';
import { DRILL_DATA, drillPassed, renderDrillReport, runRestoreDrill } from '../../lab/restore/drill.ts';
import { CLUSTER_CHECKS } from '../../lab/acceptance/suite.ts';
import { NO_KUBERNETES_ON_TARGET } from '../../lab/acceptance/context.ts';
import { missingCommand, notRoot, qemuProcessesUnder, testUnless, throwawayLabConfig, withTempDir } from '../helpers.ts';


const reason = notRoot() ?? missingCommand('mmdebstrap', 'qemu-system-x86_64', 'qemu-img', 'xorriso', 'ssh', 'openssl', 'sgdisk', 'tar');

testUnless(reason, 'drill:restore: backup of a lab, new hardware from the exported raw image and the server seed, every checksum restored', async (t) => {
  t.timeout(90 * 60_000);
  await withTempDir(async (dir) => {
    // The user's own check of restored data, as lab.yaml would have it: the expected sha256 is the text's, not the backup's.
    const index = DRILL_DATA.find((f) => f.path === 'web/site/index.html')!;
    const indexSha = createHash('sha256').update('text' in index ? index.text : '').digest('hex');
    const config = await throwawayLabConfig('it-drill', dir, [
      'checks:',
      '  - name: restored-index',
      '    type: command',
      `    run: sha256sum /var/lib/labsmith/volumes/${index.path}`,
      `    output: '^${indexSha}  '`,
    ].join('\n') + '\n');
    const progress = new Progress('plain', (line) => process.stderr.write(`[drill] ${line}`));
    const report = await runRestoreDrill({ config, driver: new QemuDriver(), source: await osOnlySourceAtMirrorHead(config), workDir: join(dir, 'drill'), progress });
    t.log(renderDrillReport(report));
    t.deepEqual(report.checks.filter((c) => !c.ok).map((c) => `${c.what}: ${c.detail}`), []);

    // The suite ran against the restored hardware and is green for what it could check.
    const suite = report.suite;
    t.deepEqual(suite.failed, [], suite.bundle ? `failure bundle: ${suite.bundle}` : '');
    t.true(suite.green);
    t.true(drillPassed(report));
    const json = JSON.parse(await readFile(suite.files.json, 'utf8')) as { checks: { name: string; ok: boolean; skip: string | false; detail?: string }[] };
    const byId = (id: string) => json.checks.find((c) => c.name.startsWith(`${id}: `));
    const passed = json.checks.filter((c) => c.ok && !c.skip).map((c) => c.name.split(':')[0]);
    // Over SSH to the new hardware with the operator's key: the host checks; through its forwarded ports: the placeholder ingress.
    for (const id of ['ssh', 'cloud-init', 'swap-off', 'kernel-prerequisites', 'containerd-active', 'docker-active', 'forward-http', 'forward-https']) t.true(passed.includes(id), `${id} passed (passed: ${passed.join(', ')})`);
    t.regex(String(byId('ssh')?.detail), /^Linux /);
    t.regex(String(byId('forward-https')?.detail), /CN=it-drill-restored\.drill\.test/, 'the server seed\'s own placeholder certificate');
    t.regex(String(byId('lab-ca-trusted')?.skip), /^not applicable: a machine from the server seed trusts no lab CA/);
    // The restored data, through the suite: the drill's check of every file against the backup's sums, and the user's own.
    t.true(passed.includes('user/restored-data-sha256'), 'every restored file checked by sha256sum --check in the guest');
    t.true(passed.includes('user/restored-index'), "the lab.yaml check of a restored file's sha256");
    // No cluster: every cluster check not run (skipped with the reason), none passed.
    for (const c of CLUSTER_CHECKS) t.is(byId(c.id)?.skip, `not run: ${NO_KUBERNETES_ON_TARGET}`, c.id);
    t.is(suite.counts.passed, passed.length);
    t.is(suite.counts.passed + suite.counts.notRun, json.checks.length);
    t.is(suite.counts.failed, 0);
    for (const f of Object.values(suite.files)) t.true(f.startsWith(join(dir, 'drill', 'suite')), f);
    t.regex(await readFile(suite.files.tap, 'utf8'), /^TAP version 14\n/);
    // Both RTOs, counted from the new hardware's first boot.
    t.true(report.rtoToVerifiedDataSeconds > 0);
    t.true(report.rtoToGreenSuiteSeconds! >= report.rtoToVerifiedDataSeconds);
    const written = JSON.parse(await readFile(join(dir, 'drill', 'drill-report.json'), 'utf8')) as typeof report;
    t.is(written.rtoToGreenSuiteSeconds, report.rtoToGreenSuiteSeconds);
    t.deepEqual(written.suite.counts, suite.counts);
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

import { buildImage } from '../../images/build.ts';
import { takeBackup } from '../../lab/backup/backup.ts';
import { remoteRun } from '../../lab/backup/remote.ts';
import { restoreBackup } from '../../lab/restore/restore.ts';
import { bringUpNewHardware, DEFAULT_NEW_HARDWARE, writeDrillData } from '../../lab/restore/drill.ts';
import { stopNewHardware } from '../../lab/restore/new-hardware.ts';
import { run } from '../../core/exec.ts';

/**
 * One boot, for hosts too loaded for the drill's two: the new hardware alone (exported raw
 * image on a larger NVMe disk, vmxnet3 NIC, server seed), data written into it, an age-encrypted
 * backup taken from it over SSH as from a server, the volumes deleted, restored, compared.
 */
testUnless(reason ?? missingCommand('age', 'age-keygen'), 'new hardware: the exported raw image grows on a larger NVMe disk, takes the static address by MAC; an encrypted backup taken from it and restored keeps every sha256', async (t) => {
  t.timeout(90 * 60_000);
  await withTempDir(async (dir) => {
    const config = await throwawayLabConfig('it-newhw', dir);
    const progress = new Progress('plain', (line) => process.stderr.write(`[newhw] ${line}`));
    const image = await buildImage({ debian: config.debian, source: await osOnlySourceAtMirrorHead(config), progress });
    const hwDir = join(dir, 'hw');
    try {
      const { remote, checks } = await bringUpNewHardware({ config, imageDisk: image.disk, spec: DEFAULT_NEW_HARDWARE, hwDir, accel: 'tcg', progress });
      for (const c of checks) t.log(`${c.ok ? '✓' : '✗'} ${c.what}: ${c.detail}`);
      t.deepEqual(checks.filter((c) => !c.ok).map((c) => `${c.what}: ${c.detail}`), []);
      await writeDrillData(remote, config.addons.storageDir);
      await run('age-keygen', ['-o', join(dir, 'age.key')]);
      const recipient = (await run('age-keygen', ['-y', join(dir, 'age.key')])).stdout.trim();
      const backup = await takeBackup({ source: { kind: 'server', name: 'it-newhw' }, remote, storageDir: config.addons.storageDir, outDir: join(dir, 'backup'), recipients: [recipient], preBackup: [], progress });
      t.is(backup.manifest.volumes.files.length, 4);
      t.deepEqual(backup.manifest.items.map((i) => i.file), ['volumes.tar.age']);
      const { stat } = await import('node:fs/promises');
      t.is((await stat(join(dir, 'backup'))).mode & 0o777, 0o700);
      for (const f of ['volumes.tar.age', 'backup.json']) t.is((await stat(join(dir, 'backup', f))).mode & 0o777, 0o600, f);
      await remoteRun(remote, ['sudo', 'rm', '-rf', config.addons.storageDir]);
      const missingKey = await t.throwsAsync(restoreBackup({ backupDir: join(dir, 'backup'), remote, mode: 'rebuild', progress }));
      t.regex(missingKey!.message, /encrypted/);
      const restored = await restoreBackup({ backupDir: join(dir, 'backup'), remote, mode: 'rebuild', identity: join(dir, 'age.key'), progress });
      t.deepEqual(restored.comparison, { checked: 4, missing: [], mismatched: [], extra: [] });
    } finally {
      await stopNewHardware(hwDir);
    }
    t.is(await qemuProcessesUnder(dir), 0, 'no qemu is left');
  });
}, { serial: true });
