/**
 * What a lab leaves on disk: every file owner-only (the libvirt stack carries the full
 * user-data, host private key and CA key among it), and qemu started from a lab directory
 * whose path breaks qemu's option syntax, with its own messages kept in qemu.log (real cdktf,
 * real terraform, real qemu).
 */
import test from 'ava';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { LAB_FILES } from '../../core/paths.ts';
import { Progress } from '../../core/progress.ts';
import type { StepContext } from '../../core/steps.ts';
import { parseLabConfig } from '../../config/load.ts';
import { synthesizeLibvirtStack } from '../../lab/drivers/libvirt/cdktf.ts';
import { planLibvirtStack } from '../../lab/drivers/libvirt/stack.ts';
import { findTerraform, terraformApply, terraformInit } from '../../lab/drivers/libvirt/terraform.ts';
import { isOurQemu, QemuDriver } from '../../lab/drivers/qemu.ts';
import { throwawayLabYaml } from '../../lab/ports.ts';
import { isProcessAlive } from '../../lab/state.ts';
import { filesOpenToOthers } from '../file-modes.ts';
import { imageLikeBaseImage, missingCommand, NEUTRAL_HOST, testUnless, withTempDir } from '../helpers.ts';

const SECRET_USER_DATA = '#cloud-config\nssh_keys:\n  ed25519_private: |\n    -----BEGIN OPENSSH PRIVATE KEY-----\n    fixture\n';

test('a synthesized libvirt stack (cdk.tf.json holds the user-data) has no file readable by group or others', async (t) => {
  await withTempDir(async (dir) => {
    const parsed = parseLabConfig('name: lab\n', NEUTRAL_HOST, dir);
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
    const plan = planLibvirtStack({ config: parsed.config, accel: 'tcg', baseImage: { path: '/cache/disk.qcow2', hash: 'ab'.repeat(32) }, seed: { 'user-data': SECRET_USER_DATA, 'meta-data': 'instance-id: x\n', 'network-config': 'version: 2\n' }, firmware: { code: '/x', varsTemplate: '/y' } });
    const out = join(dir, 'lab', 'terraform');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(dir, 'lab'), { mode: 0o700 });
    const stack = synthesizeLibvirtStack(plan, out);
    t.regex(await readFile(join(stack.dir, 'cdk.tf.json'), 'utf8'), /OPENSSH PRIVATE KEY/, 'the secret is in there');
    t.deepEqual(await filesOpenToOthers(out), []);
  });
});

testUnless(missingCommand('terraform') && missingCommand('tofu') ? 'neither terraform nor tofu is installed' : undefined, 'terraform.tfstate written through the driver is owner-only', async (t) => {
  await withTempDir(async (dir) => {
    // No provider needed: an output is enough to make terraform write its state, offline.
    await writeFile(join(dir, 'main.tf.json'), JSON.stringify({ output: { user_data: { value: SECRET_USER_DATA, sensitive: true } } }), { mode: 0o600 });
    const bin = await findTerraform();
    await terraformInit(bin, dir);
    await terraformApply(bin, dir);
    t.true(existsSync(join(dir, 'terraform.tfstate')));
    t.regex(await readFile(join(dir, 'terraform.tfstate'), 'utf8'), /OPENSSH PRIVATE KEY/);
    t.deepEqual(await filesOpenToOthers(dir), []);
  });
});

const noQemu = missingCommand('qemu-system-x86_64', 'qemu-img', 'qemu-io', 'sgdisk', 'mkfs.vfat', 'mmd', 'mcopy');

async function vmRequest(dir: string, yamlExtra = '') {
  const stateDir = join(dir, 'labs,a=b', 'state');
  const { mkdir } = await import('node:fs/promises');
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const parsed = parseLabConfig(await throwawayLabYaml('comma', stateDir, `vm: { memory: 2GiB }\n${yamlExtra}`), undefined, dir);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  // The driver finds the ESP's GRUB environment block to write the lab's kernel options into.
  const base = await imageLikeBaseImage(dir);
  const seedIso = join(stateDir, LAB_FILES.seed);
  await writeFile(seedIso, Buffer.alloc(64 * 1024));
  const undos: (() => Promise<void>)[] = [];
  const step: StepContext = { signal: new AbortController().signal, progress: new Progress('plain', () => undefined), onUndo: (_t, u) => void undos.push(u) };
  return { config: parsed.config, stateDir, base, seedIso, step, undos };
}

testUnless(noQemu, 'qemu starts from a lab directory with a comma in its path; its pid, monitor and log are where the lab expects', async (t) => {
  await withTempDir(async (dir) => {
    const { config, stateDir, base, seedIso, step, undos } = await vmRequest(dir);
    const driver = new QemuDriver();
    try {
      const started = await driver.up({ config, accel: 'tcg', baseImage: base, imageHash: '0'.repeat(64), seedIso, seed: { 'user-data': '', 'meta-data': '', 'network-config': '' } }, step);
      t.true(isProcessAlive(started.pid!));
      t.true(await isOurQemu(started.pid!, stateDir));
      t.true(existsSync(join(stateDir, LAB_FILES.monitor)), 'the QMP socket is at the path with the comma, not cut at it');
      t.true(existsSync(join(stateDir, LAB_FILES.qemuLog)));
      t.false(existsSync(join(dir, 'labs')), 'nothing was made at the path cut at the comma');
      const status = await driver.status({ name: 'comma', driver: 'qemu', accel: 'tcg', startedAt: new Date().toISOString(), hostAddress: '127.0.0.1', forwards: [], sshUser: 'debian', imageDir: '/i' }, stateDir);
      t.true(status.running);
    } finally {
      for (const undo of undos.reverse()) await undo();
    }
    t.false(existsSync(join(stateDir, LAB_FILES.qemuPid)));
  });
});

testUnless(noQemu, 'qemu that refuses to start is reported with its own message, which qemu.log keeps', async (t) => {
  await withTempDir(async (dir) => {
    const { config, stateDir, base, seedIso, step, undos } = await vmRequest(dir);
    const ssh = config.network.forwards.find((f) => f.name === 'ssh')!;
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(ssh.host, '127.0.0.1', resolve));
    try {
      const error = await t.throwsAsync(new QemuDriver().up({ config, accel: 'tcg', baseImage: base, imageHash: '0'.repeat(64), seedIso, seed: { 'user-data': '', 'meta-data': '', 'network-config': '' } }, step));
      t.regex(error!.message, /qemu refused to start \(exit 1\):[\s\S]*Could not set up host forwarding rule/);
      t.regex(await readFile(join(stateDir, LAB_FILES.qemuLog), 'utf8'), /Could not set up host forwarding rule/);
    } finally {
      blocker.close();
      for (const undo of undos.reverse()) await undo();
    }
  });
});
