/**
 * Commands on an existing lab work from its recorded state: real qemu processes (an idle
 * `-machine none` VM stands in for a lab's VM: same pid file, same process checks), the real
 * CLI scripts, real signals.
 */
import { execa } from 'execa';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { LabError } from '../../core/errors.ts';
import { run } from '../../core/exec.ts';
import { LAB_FILES } from '../../core/paths.ts';
import { Progress } from '../../core/progress.ts';
import { readHostFacts } from '../../config/host-facts.ts';
import { LibvirtDriver } from '../../lab/drivers/libvirt/driver.ts';
import { isOurQemu, QemuDriver, stopQemu, terminateProcess } from '../../lab/drivers/qemu.ts';
import { throwawayLabYaml } from '../../lab/ports.ts';
import { isProcessAlive, readLabState, writeLabState, type LabState } from '../../lab/state.ts';
import { labUp } from '../../lab/up.ts';
import { missingCommand, notRoot, testUnless, throwawayLabConfig, withTempDir } from '../helpers.ts';

const TSX = join(process.cwd(), 'node_modules', '.bin', 'tsx');
const quiet = () => new Progress('plain', () => undefined);

/** An idle qemu whose command line names `stateDir`'s pid file, as the qemu driver's VM does. */
async function startIdleQemu(stateDir: string): Promise<number> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const pidFile = join(stateDir, LAB_FILES.qemuPid);
  await run('qemu-system-x86_64', ['-machine', 'none', '-nodefaults', '-display', 'none', '-pidfile', pidFile, '-daemonize']);
  return Number((await readFile(pidFile, 'utf8')).trim());
}

async function recordQemuLab(stateDir: string, config: LabState['config'], pid: number): Promise<LabState> {
  const state: LabState = {
    name: config!.name,
    driver: 'qemu',
    accel: 'tcg',
    startedAt: new Date().toISOString(),
    complete: true,
    hostAddress: config!.network.hostAddress,
    forwards: config!.network.forwards,
    sshUser: config!.ssh.user,
    imageDir: '/nonexistent',
    pid,
    config,
  };
  await writeLabState(stateDir, state);
  for (const f of [LAB_FILES.sshKey, LAB_FILES.caKey]) await writeFile(join(stateDir, f), 'secret\n', { mode: 0o600 });
  return state;
}

const noQemu = missingCommand('qemu-system-x86_64');

testUnless(noQemu, 'lab:up with another --driver on a running lab refuses from the recorded driver and leaves the lab alone', async (t) => {
  await withTempDir(async (dir) => {
    const config = await throwawayLabConfig('running', dir);
    const pid = await startIdleQemu(config.stateDir);
    // Holds the http port: were the lab judged gone, lab:up would stop at the port check, after having wiped it.
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(config.network.forwards.find((f) => f.name === 'http')!.host, '127.0.0.1', resolve));
    try {
      await recordQemuLab(config.stateDir, config, pid);
      const error = await t.throwsAsync(labUp({ config, driver: new LibvirtDriver(), source: {} as never, progress: quiet() }));
      t.regex(error!.message, /lab "running" is already running \(pid \d+\) under the qemu driver \(this run asked for libvirt\)/);
      t.true(isProcessAlive(pid), 'the VM still runs');
      t.truthy(await readLabState(config.stateDir), 'its state is kept');
      t.true(existsSync(join(config.stateDir, LAB_FILES.sshKey)), 'its keys are kept');
    } finally {
      blocker.close();
      await stopQemu(config.stateDir);
    }
  });
});

testUnless(noQemu, 'lab:up on a dead lab cleans up with the recorded driver before starting again', async (t) => {
  await withTempDir(async (dir) => {
    const config = await throwawayLabConfig('dead', dir);
    const pid = await startIdleQemu(config.stateDir);
    await recordQemuLab(config.stateDir, config, pid);
    await terminateProcess(pid);
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(config.network.forwards.find((f) => f.name === 'http')!.host, '127.0.0.1', resolve));
    try {
      const lines: string[] = [];
      const error = await t.throwsAsync(labUp({ config, driver: new QemuDriver(), source: {} as never, progress: new Progress('plain', (l) => lines.push(l)) }));
      t.regex(lines.join(''), /removing what an earlier lab:up of "dead" left \(qemu driver, VM not running\)/);
      t.regex(error!.message, /port \d+ on 127\.0\.0\.1 is already in use/);
      t.false(existsSync(join(config.stateDir, LAB_FILES.sshKey)), 'the stale keys went');
    } finally {
      blocker.close();
    }
  });
});

/** A non-loopback network of this host, for a config that create-time checks must refuse. */
async function hostNetwork(): Promise<string | undefined> {
  const facts = await readHostFacts();
  const a = facts.addresses.find((x) => !x.address.startsWith('127.') && x.prefix <= 28);
  if (!a) return undefined;
  const parts = a.address.split('.').map(Number);
  const mask = a.prefix >= 24 ? 24 : 16;
  return `${parts.slice(0, mask / 8).join('.')}${mask === 24 ? '.0' : '.0.0'}/${mask}`;
}

testUnless(noQemu, 'lab:status and lab:down (the CLI) act on the recorded lab when lab.yaml was edited since, and say so', async (t) => {
  await withTempDir(async (dir) => {
    const config = await throwawayLabConfig('edited', dir);
    const pid = await startIdleQemu(config.stateDir);
    try {
      await recordQemuLab(config.stateDir, config, pid);
      // Edited after lab:up: other ports, and a libvirt subnet on this host's own network
      // (what a running NAT lab's bridge looks like), which creating a lab must refuse.
      const subnet = await hostNetwork();
      const edited = join(dir, 'lab.yaml');
      await writeFile(edited, await throwawayLabYaml('edited', config.stateDir, subnet ? `libvirt: { subnet: ${subnet} }\n` : ''));
      const status = await execa(TSX, ['scripts/lab-status.ts', '--config', edited], { reject: false });
      t.is(status.exitCode, 0, status.stderr);
      t.regex(status.stdout, /lab edited: running/);
      t.regex(status.stdout, /qemu driver/);
      t.regex(status.stdout, /lab\.yaml changed since lab:up \(.*network\.forwards.*\)/);

      const down = await execa(TSX, ['scripts/lab-down.ts', '--config', edited], { reject: false });
      t.is(down.exitCode, 0, down.stderr);
      t.regex(down.stdout, /lab\.yaml changed since lab:up/);
      t.regex(down.stdout, /lab edited removed/);
      t.false(isProcessAlive(pid), 'the recorded VM is stopped');
      t.false(existsSync(config.stateDir), 'its files are gone');
    } finally {
      if (isProcessAlive(pid)) await terminateProcess(pid);
    }
  });
});

testUnless(noQemu, 'a renamed lab is named: lab:status, lab:down and lab:ssh on a new name list the lab recorded under the old one', async (t) => {
  await withTempDir(async (dir) => {
    const root = join(dir, 'state-root');
    // Recorded in <root>/state: a directory of the state root, as a default lab directory is.
    const config = await throwawayLabConfig('before', root);
    const pid = await startIdleQemu(config.stateDir);
    try {
      await recordQemuLab(config.stateDir, config, pid);
      const renamed = join(dir, 'lab.yaml');
      await writeFile(renamed, 'name: after\nnetwork: { forwards: { http: { host: 18080 }, https: { host: 18443 }, ssh: { host: 12222 }, apiserver: { host: 16443 } } }\n');
      const env = { ...process.env, LABSMITH_STATE_DIR: root };
      const status = await execa(TSX, ['scripts/lab-status.ts', '--config', renamed], { reject: false, env });
      t.is(status.exitCode, 3);
      t.regex(status.stdout, /lab after: not created/);
      t.regex(status.stdout, new RegExp(`this machine has: before \\(${root}/state\\).*name or stateDir changed`));
      const ssh = await execa(TSX, ['scripts/lab-ssh.ts', '--config', renamed, 'true'], { reject: false, env });
      t.is(ssh.exitCode, 3);
      t.regex(ssh.stderr, /this machine has: before/);
      const down = await execa(TSX, ['scripts/lab-down.ts', '--config', renamed], { reject: false, env });
      t.is(down.exitCode, 0, down.stderr);
      t.regex(down.stdout, /this machine has: before/);
      t.true(isProcessAlive(pid), 'the old lab is left alone');
    } finally {
      if (isProcessAlive(pid)) await terminateProcess(pid);
    }
  });
});

testUnless(noQemu ?? (process.getuid?.() === 0 ? undefined : 'needs root to switch to nobody'), 'lab:status as an unprivileged user is not refused for privileged ports it never binds', async (t) => {
  await withTempDir(async (dir) => {
    await chmod(dir, 0o755);
    const yaml = join(dir, 'lab.yaml');
    await writeFile(yaml, `name: low\nstateDir: ${join(dir, 'state')}\nnetwork:\n  forwards:\n    http: { host: 80 }\n    https: { host: 443 }\n    ssh: { host: 2222 }\n`, { mode: 0o644 });
    const r = await execa('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', TSX, 'scripts/lab-status.ts', '--config', yaml], { reject: false, env: { HOME: dir } });
    t.is(r.exitCode, 3, `${r.stdout}\n${r.stderr}`);
    t.regex(r.stdout, /lab low: not created/);
  });
});

testUnless(noQemu, 'isOurQemu matches the lab directory exactly: /x/lab2 is not /x/lab', async (t) => {
  await withTempDir(async (dir) => {
    const lab2 = join(dir, 'lab2');
    const pid = await startIdleQemu(lab2);
    try {
      t.true(await isOurQemu(pid, lab2));
      t.false(await isOurQemu(pid, join(dir, 'lab')));
      // And stopping the other lab leaves this one running.
      await mkdir(join(dir, 'lab'));
      await writeFile(join(dir, 'lab', LAB_FILES.qemuPid), String(pid));
      await stopQemu(join(dir, 'lab'));
      t.true(isProcessAlive(pid));
    } finally {
      await stopQemu(lab2);
    }
    t.false(isProcessAlive(pid));
  });
});

// kthreadd ignores every signal from user space, SIGKILL included: a process no signal moves, harmlessly.
const kthreadd = notRoot() ?? (readFileSafe('/proc/2/comm').trim() === 'kthreadd' ? undefined : 'pid 2 is not kthreadd here');
function readFileSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

testUnless(kthreadd, 'terminating a process that survives SIGKILL gives up after a bounded wait with the reason', async (t) => {
  const started = Date.now();
  const error = await t.throwsAsync(terminateProcess(2, { graceMs: 200, killWaitMs: 300 }));
  t.true(error instanceof LabError);
  t.regex(error!.message, /process 2 is still there 0s after SIGKILL/);
  t.regex((error as LabError).hint!, /\/proc\/2\/stack/);
  t.true(Date.now() - started < 30_000, 'bounded, not forever');
});
