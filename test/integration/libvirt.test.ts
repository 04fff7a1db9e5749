/**
 * --driver libvirt end to end: apply the stack against qemu:///system with TCG, wait for
 * the VM, check its base, overlay and seed volumes, remove it with `lab:down` through the CLI
 * as a user would, and assert no domain, volume, network or nftables table is left.
 * Runs only where the provider can be installed and libvirtd answers; otherwise it skips
 * and says exactly which of the two is missing.
 */
import { osOnlySourceAtMirrorHead } from '../../images/source.ts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execa, execaSync } from 'execa';
import { writeFile } from 'node:fs/promises';
import { run } from '../../core/exec.ts';
import { Progress } from '../../core/progress.ts';
import { parseLabConfig } from '../../config/load.ts';
import { throwawayLabYaml } from '../../lab/ports.ts';
import { filesOpenToOthers } from '../file-modes.ts';
import { LibvirtDriver } from '../../lab/drivers/libvirt/driver.ts';
import { synthesizeLibvirtStack } from '../../lab/drivers/libvirt/cdktf.ts';
import { libvirtNames, planLibvirtStack } from '../../lab/drivers/libvirt/stack.ts';
import { NFT } from '../../lab/forwarding/nft-apply.ts';
import { tableName } from '../../lab/forwarding/nft-rules.ts';
import { labUp } from '../../lab/up.ts';
import { missingCommand, notRoot, testUnless, throwawayLabConfig, worldFact, type SkipReason } from '../helpers.ts';

/** Decided before registration (ava needs tests declared synchronously): can this host apply the stack? */
function whyNot(): SkipReason | undefined {
  const basic = notRoot() ?? missingCommand('virsh', 'qemu-system-x86_64');
  if (basic) return basic;
  const bin = missingCommand('tofu') ? (missingCommand('terraform') ? undefined : 'terraform') : 'tofu';
  if (!bin) return 'neither tofu nor terraform is installed';
  const dir = mkdtempSync(join(tmpdir(), 'labsmith-libvirt-probe-'));
  try {
    const config = parseLabConfig('name: probe\n', { isRoot: true, unprivilegedPortStart: 1024, routes: [], addresses: [], kvmDevice: false }, dir);
    if (!config.ok) return 'probe config invalid';
    const stack = synthesizeLibvirtStack(planLibvirtStack({ config: config.config, accel: 'tcg', baseImage: { path: '/x', hash: '0'.repeat(64) }, seed: { 'user-data': '', 'meta-data': '', 'network-config': '' }, firmware: { code: '/x', varsTemplate: '/x' } }), dir);
    const init = execaSync(bin, [`-chdir=${stack.dir}`, 'init', '-input=false', '-no-color'], { reject: false, timeout: 120_000, env: { TF_IN_AUTOMATION: '1', CHECKPOINT_DISABLE: '1' } });
    if (init.exitCode !== 0) {
      const lines = `${init.stdout}\n${init.stderr}`.split('\n').map((l) => l.replace(/[│╷╵]/g, '').trim());
      const line = lines.find((l) => /could not connect/.test(l)) ?? lines.find((l) => /Error:/.test(l));
      const why = `the libvirt provider dmacvicar/libvirt 0.9.7 cannot be installed here (${line ?? `${bin} init exit ${init.exitCode}`})`;
      // An unreachable registry (registry.terraform.io) is a fact of the world CI machines live in; any other init failure is not.
      return line && /could not connect|no such host|dial tcp|timeout/i.test(line) ? worldFact(why) : why;
    }
    const virsh = execaSync('virsh', ['-c', 'qemu:///system', 'version'], { reject: false, timeout: 15_000 });
    return virsh.exitCode === 0 ? undefined : 'libvirtd is not reachable at qemu:///system';
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One line, whatever terraform or virsh printed. */
const oneLine = (reason: SkipReason | undefined): SkipReason | undefined => {
  const flat = (text: string) => text.replace(/\s+/g, ' ').trim();
  return typeof reason === 'object' ? worldFact(flat(reason.world)) : reason === undefined ? undefined : flat(reason);
};

testUnless(oneLine(whyNot()), 'libvirt lab: apply, boot, volumes, checks, lab:down through the CLI, nothing left', async (t) => {
  t.timeout(60 * 60_000);
  const dir = mkdtempSync(join(tmpdir(), 'labsmith-libvirt-'));
  const config = await throwawayLabConfig('it-virt', dir, 'vm: { accel: tcg }\n');
  const driver = new LibvirtDriver();
  const progress = new Progress('plain', (l) => process.stderr.write(`[virt] ${l}`));
  const names = libvirtNames(config.name);
  const volumes = async () => (await run('virsh', ['-c', 'qemu:///system', 'vol-list', '--pool', config.libvirt.pool], { allowFailure: true })).stdout;
  try {
    const up = await labUp({ config, driver, source: await osOnlySourceAtMirrorHead(config), progress, failedLogsDir: join(dir, 'failed') });
    t.deepEqual(up.checks.filter((c) => !c.ok).map((c) => c.id), []);
    const listed = await volumes();
    t.regex(listed, new RegExp(`labsmith-${config.name}-base-[0-9a-f]{16}\\.qcow2`), 'the base volume');
    t.true(listed.includes(names.overlay), 'the overlay volume');
    t.true(listed.includes(names.seed), 'the seed volume');
    t.deepEqual(await filesOpenToOthers(config.stateDir), [], 'no file of the lab (cdk.tf.json, terraform.tfstate) is readable by group or others');
  } finally {
    // As a user would: the CLI, with a lab.yaml naming the lab (its ports differ: what is removed comes from the recorded state).
    const yaml = join(dir, 'lab.yaml');
    await writeFile(yaml, await throwawayLabYaml(config.name, config.stateDir, 'vm: { accel: tcg }\n'));
    const down = await execa('npm', ['run', '--silent', 'lab:down', '--', '--config', yaml], { reject: false });
    t.is(down.exitCode, 0, `${down.stdout}\n${down.stderr}`);
    t.regex(down.stdout, new RegExp(`lab ${config.name} removed`));
  }
  t.not((await run('virsh', ['-c', 'qemu:///system', 'dominfo', names.domain], { allowFailure: true })).exitCode, 0, 'no domain');
  t.not((await run('virsh', ['-c', 'qemu:///system', 'net-info', names.network], { allowFailure: true })).exitCode, 0, 'no network');
  t.false((await volumes()).includes(`labsmith-${config.name}-`), 'no volume of the lab');
  t.false((await run(NFT, ['list', 'tables'])).stdout.includes(tableName(config.name)), 'no nftables table');
  t.false(existsSync(config.stateDir));
});
