/**
 * The whole path on real tools: build the image (or reuse the cache), boot it under the
 * accelerator the host really supports, pass the checks, report, and tear down leaving
 * nothing: no qemu process, no listening forward, no file of the lab.
 */
import { acceptanceContextForLab, OS_ONLY_REASON } from '../../lab/acceptance/context.ts';
import { suiteChecks } from '../../lab/acceptance/suite.ts';
import { osOnlySourceAtMirrorHead } from '../../images/source.ts';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CancelledError } from '../../core/errors.ts';
import { Progress } from '../../core/progress.ts';
import { QemuDriver } from '../../lab/drivers/qemu.ts';
import { labDown } from '../../lab/down.ts';
import { probePort } from '../../lab/ports.ts';
import { labStatus } from '../../lab/status.ts';
import { labUp } from '../../lab/up.ts';
import { sshRun } from '../../lab/ssh.ts';
import { KERNEL_CMDLINE, LAB_KERNEL_OPTIONS } from '../../images/boot-files.ts';
import { runAcceptanceSuite } from '../../lab/acceptance/suite.ts';
import { filesOpenToOthers } from '../file-modes.ts';
import { missingCommand, notRoot, qemuProcessesUnder, testUnless, throwawayLabConfig, withTempDir } from '../helpers.ts';
import { LAB_STATE_VERSION, readLabState } from '../../lab/state.ts';
import { readdir } from 'node:fs/promises';
import { planRenderedLab } from '../../lab/render.ts';
import { PASSWORD_ENV, startGuestDnsResponder, userSideYaml } from '../fixtures/lab-user-side.ts';

async function filesContaining(root: string, needle: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    if ((await readFile(path)).includes(needle)) found.push(path);
  }
  return found;
}

const reason = notRoot() ?? missingCommand('mmdebstrap', 'qemu-system-x86_64', 'qemu-img', 'xorriso', 'ssh', 'openssl');

testUnless(reason, 'lab:up boots the image, the checks pass, test:e2e reports, lab:down leaves nothing', async (t) => {
  t.timeout(60 * 60_000);
  await withTempDir(async (dir) => {
    const user = await userSideYaml(dir);
    process.env[PASSWORD_ENV] = user.password;
    t.teardown(() => delete process.env[PASSWORD_ENV]);
    const config = await throwawayLabConfig('it-lab', dir, user.yaml, user.forwards);
    t.deepEqual(config.network.forwards.find((f) => f.name === 'dns'), { name: 'dns', host: config.checks.find((c) => c.type === 'dns')!.port, guest: 53, protocol: 'both' });
    const driver = new QemuDriver();
    const progress = new Progress('plain', (line) => process.stderr.write(`[it] ${line}`));
    try {
      const up = await labUp({ config, driver, source: await osOnlySourceAtMirrorHead(config), progress, failedLogsDir: join(dir, 'failed') });
      t.true(up.checks.length >= 9);
      t.deepEqual(up.checks.filter((c) => !c.ok).map((c) => `${c.id}: ${c.detail}`), []);
      t.log(`accelerator: ${up.state.accel}; steps: ${up.timings.map((s) => `${s.title} ${Math.round(s.durationMs / 1000)}s`).join(', ')}`);

      const status = await labStatus(config);
      t.true(status.running);

      // An OS-only lab: the host checks and the user's checks pass, and every cluster check says plainly that there is no cluster.
      const ctx = await acceptanceContextForLab(config, driver);
      await startGuestDnsResponder(ctx.ssh!);
      // Booted by OVMF and the disk's GRUB, which added the lab's options from the overlay's ESP.
      const cmdline = (await sshRun(ctx.ssh!, ['cat', '/proc/cmdline'])).stdout.trim();
      t.regex(cmdline, /^BOOT_IMAGE=\/vmlinuz root=UUID=\S+ /, cmdline);
      t.true(cmdline.endsWith(` ${KERNEL_CMDLINE} ${LAB_KERNEL_OPTIONS}`), cmdline);
      t.regex((await sshRun(ctx.ssh!, ['findmnt', '-no', 'OPTIONS', '/'])).stdout, /^rw,.*errors=remount-ro/, 'root read-write from the start, with fstab\'s error policy');
      // The image's drop-in reaches the unit Debian's cloud-init ships (a renamed unit would leave it inert).
      const unit = (await sshRun(ctx.ssh!, ['systemctl', 'show', '-p', 'CPUWeight', '-p', 'LoadState', 'cloud-init-main.service'])).stdout;
      t.deepEqual(unit.trim().split('\n').sort(), ['CPUWeight=500', 'LoadState=loaded'], unit);
      const modules = (await sshRun(ctx.ssh!, ['cat', '/proc/modules'])).stdout;
      t.deepEqual(modules.split('\n').map((l) => l.split(' ')[0]).filter((m) => ['ahci', 'kvm', 'kvm_amd', 'kvm_intel'].includes(m!)), [], 'the blacklisted modules are not loaded');
      const suite = await runAcceptanceSuite({ ctx, name: config.name, reportDir: join(dir, 'report'), userChecks: config.checks });
      const { host, cluster, user: own } = suiteChecks(ctx, config.checks);
      t.is(own.length, 7);
      t.is(suite.report.pass, host.length + own.length, suite.summary);
      t.is(suite.report.fail, cluster.length, suite.summary);
      const json = JSON.parse(await readFile(suite.files.json, 'utf8')) as { checks: { id: string; name: string; ok: boolean; detail?: string }[] };
      for (const c of json.checks.filter((c) => !c.ok)) t.is(c.detail, OS_ONLY_REASON, c.name);
      const byName = new Map(json.checks.map((c) => [c.id, c]));
      t.regex(byName.get('user/guest-dns')?.detail ?? '', /udp.*tcp|tcp.*udp/i, 'answered through the host port over UDP and TCP');
      for (const name of ['registry-keyring-mode', 'registry-keyring-auth', 'registry-ca', 'registry-hosts-toml', 'registry-secret-not-logged']) t.true(byName.get(`user/${name}`)?.ok, `${name}: ${byName.get(`user/${name}`)?.detail}`);
      t.regex(await readFile(suite.files.junit, 'utf8'), new RegExp(`<testsuite name="labsmith acceptance \\(it-lab\\)" tests="${host.length + cluster.length + own.length}" failures="${cluster.length}"`));
      // The credentials are in the guest only: not in the report, the log bundle or the seed lab:render shows.
      for (const f of [suite.files.json, suite.files.junit, suite.files.tap]) t.false((await readFile(f, 'utf8')).includes(user.password), f);
      t.deepEqual(await filesContaining(suite.bundle!, user.password), [], 'no file of the log bundle holds the password');
      const rendered = planRenderedLab(config).seed['user-data'];
      t.false(rendered.includes(user.password));
      t.regex(rendered, new RegExp(`password from \\$${PASSWORD_ENV}`));
      t.truthy(suite.bundle, 'a failed run leaves a log bundle');
      t.true(existsSync(join(suite.bundle!, 'journal-kubelet.txt')) && existsSync(join(suite.bundle!, 'serial.log')));

      // Secrets stay on the host with owner-only modes: the lab directory and every file in it.
      for (const f of ['id_ed25519', 'ca.key', 'seed.iso']) t.true(existsSync(join(config.stateDir, f)), f);
      const { stat } = await import('node:fs/promises');
      t.is((await stat(config.stateDir)).mode & 0o777, 0o700, 'the lab directory is owner-only');
      t.deepEqual(await filesOpenToOthers(config.stateDir), [], 'no file of the running lab is readable by group or others');
      // qemu's own stderr is kept for the boot hint and the failure bundle.
      t.true(existsSync(join(config.stateDir, 'qemu.log')), 'qemu.log exists');
      const recorded = await readLabState(config.stateDir);
      t.is(recorded?.version, LAB_STATE_VERSION);
      t.is(recorded?.driver, 'qemu');
      t.deepEqual(recorded?.config, JSON.parse(JSON.stringify(config)), 'the state records the config lab:up ran with');
    } finally {
      await labDown({ config, progress });
    }
    t.is(await qemuProcessesUnder(config.stateDir), 0, 'no qemu process is left');
    for (const f of config.network.forwards) t.is(await probePort('127.0.0.1', f.host), undefined, `${f.name} port ${f.host} is free again`);
    t.false(existsSync(config.stateDir), 'the lab directory is gone');
  });
}, { serial: true });

testUnless(reason, 'a lab:up interrupted after the VM is up (Ctrl-C) removes everything it made', async (t) => {
  t.timeout(60 * 60_000);
  await withTempDir(async (dir) => {
    const config = await throwawayLabConfig('it-abort', dir, 'vm: { boot: direct }\n');
    const controller = new AbortController();
    // Ctrl-C arrives as soon as SSH answered: the VM, overlay, seed and keys all exist by then.
    const progress = new Progress('plain', (line) => {
      process.stderr.write(`[it-abort] ${line}`);
      if (line.startsWith('• Waiting for cloud-init')) controller.abort();
    });
    const error = await t.throwsAsync(labUp({ config, driver: new QemuDriver(), source: await osOnlySourceAtMirrorHead(config), progress, signal: controller.signal, failedLogsDir: join(dir, 'failed') }));
    t.true(error instanceof CancelledError, error?.message);
    t.is(await qemuProcessesUnder(config.stateDir), 0, 'the VM was stopped');
    for (const f of config.network.forwards) t.is(await probePort('127.0.0.1', f.host), undefined, `${f.name} port is free again`);
    t.false(existsSync(config.stateDir), 'no file of the lab is left');
    t.false(existsSync(join(dir, 'failed')), 'Ctrl-C is not a failure: no log bundle');
  });
}, { serial: true });
