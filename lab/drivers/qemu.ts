/**
 * The default driver: qemu with no daemon. An overlay qcow2 on the cached base image, UEFI,
 * virtio disk/NIC, user networking with one hostfwd per forward, serial console to a file.
 * qemu daemonizes itself and writes a pid file; lab:down finds it there.
 */
import { copyFile, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { LabError } from '../../core/errors.ts';
import { run } from '../../core/exec.ts';
import { LAB_FILES } from '../../core/paths.ts';
import { parseSize } from '../../core/units.ts';
import { sleep } from '../../core/sleep.ts';
import { isProcessAlive, type LabState } from '../state.ts';
import type { LabDriver, VmStartRequest, VmStatus } from './driver.ts';
import { renderQemuArgs } from './qemu-args.ts';
import { growRootPartition } from './grow-root.ts';
import { writeKernelOptions } from './kernel-options.ts';
import { uefiVarsForLab } from './uefi-vars.ts';
import { LAB_KERNEL_OPTIONS } from '../../images/boot-files.ts';

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';
const QEMU = 'qemu-system-x86_64';

export class QemuDriver implements LabDriver {
  readonly name = 'qemu';
  readonly capabilities = { forwardsPortsItself: true, directKernelBoot: true, growsRootPartition: true };

  async up(request: VmStartRequest, step: Parameters<LabDriver['up']>[1]): Promise<Partial<LabState>> {
    const { config } = request;
    const dir = config.stateDir;
    const overlay = join(dir, LAB_FILES.overlay);
    const vars = join(dir, LAB_FILES.varsFd);
    const pidFile = join(dir, LAB_FILES.qemuPid);

    await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', request.baseImage, overlay, String(parseSize(config.vm.disk))], {
      signal: step.signal,
      hint: 'the base image may be missing or corrupt: rebuild it with `npm run image:build -- --rebuild`',
    });
    step.onUndo('VM disk overlay', () => rm(overlay, { force: true }));
    await growRootPartition({ baseImage: request.baseImage, overlay, diskBytes: parseSize(config.vm.disk)!, workDir: dir, signal: step.signal });
    const machine = { accel: request.accel, cpus: config.vm.cpus, memoryMiB: Math.floor(parseSize(config.vm.memory)! / 2 ** 20) };
    if (!request.directBoot) {
      // GRUB passes them on: the same lab options as a direct boot's command line.
      await writeKernelOptions({ baseImage: request.baseImage, overlay, options: LAB_KERNEL_OPTIONS, workDir: dir, signal: step.signal });
      const template = request.cacheDir
        ? await uefiVarsForLab({ cacheDir: request.cacheDir, firmwareCode: OVMF_CODE, varsTemplate: OVMF_VARS, machine, signal: step.signal })
        : OVMF_VARS;
      await copyFile(template, vars);
      step.onUndo('UEFI variables', () => rm(vars, { force: true }));
    }

    const args = renderQemuArgs({
      name: config.name,
      ...machine,
      overlay,
      seedIso: request.seedIso,
      boot: request.directBoot ? { kind: 'direct', ...request.directBoot } : { kind: 'uefi', firmwareCode: OVMF_CODE, firmwareVars: vars },
      hostAddress: config.network.hostAddress,
      forwards: config.network.forwards,
      serialLog: this.consoleLog(dir),
      pidFile,
      qmpSocket: join(dir, LAB_FILES.monitor),
      qemuLog: join(dir, LAB_FILES.qemuLog),
    });
    // Registered before the start: if qemu daemonized but a later step fails, it is stopped.
    step.onUndo('VM process', () => stopQemu(dir));
    await startQemuDaemon(args, join(dir, LAB_FILES.qemuLog), step.signal);
    const pid = await readPid(pidFile);
    if (!pid) throw new LabError(`qemu started but wrote no pid to ${pidFile}`, 'see the serial log in the lab directory');
    return { pid, qemuArgs: args };
  }

  /** The same argv as the first start: same disk, firmware variables, seed and forwards. */
  async restart(state: LabState, stateDir: string, signal?: AbortSignal): Promise<Partial<LabState>> {
    if (!state.qemuArgs?.length) throw new LabError(`the lab in ${stateDir} recorded no qemu command line (started by an older labsmith)`, 'recreate it: npm run lab:down && npm run lab:up');
    if ((await this.status(state, stateDir)).running) throw new LabError(`the lab VM in ${stateDir} is still running`, 'stop it before starting it again');
    const pidFile = join(stateDir, LAB_FILES.qemuPid);
    await rm(pidFile, { force: true });
    await rm(join(stateDir, LAB_FILES.monitor), { force: true });
    await startQemuDaemon(state.qemuArgs, join(stateDir, LAB_FILES.qemuLog), signal);
    const pid = await readPid(pidFile);
    if (!pid) throw new LabError(`qemu started but wrote no pid to ${pidFile}`, 'see qemu.log in the lab directory');
    return { pid, startedAt: new Date().toISOString() };
  }

  async down(_state: LabState, stateDir: string): Promise<void> {
    await stopQemu(stateDir);
  }

  async status(state: LabState, stateDir: string): Promise<VmStatus> {
    const pid = await readPid(join(stateDir, LAB_FILES.qemuPid));
    if (!pid || !(await isOurQemu(pid, stateDir))) return { running: false };
    return { running: true, pid, uptimeSeconds: Math.round((Date.now() - Date.parse(state.startedAt)) / 1000) };
  }

  sshEndpoint(state: LabState): { host: string; port: number } {
    const ssh = state.forwards.find((f) => f.name === 'ssh');
    if (!ssh) throw new LabError('the lab has no ssh forward', 'add network.forwards.ssh to lab.yaml');
    return { host: state.hostAddress === '0.0.0.0' ? '127.0.0.1' : state.hostAddress, port: ssh.host };
  }

  address(): string | undefined {
    return undefined; // behind qemu's user network: reachable only through the forwards
  }

  consoleLog(stateDir: string, _labName?: string): string {
    return join(stateDir, LAB_FILES.serialLog);
  }
}

async function readPid(pidFile: string): Promise<number | undefined> {
  const text = await readFile(pidFile, 'utf8').catch(() => '');
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * Starts qemu, which daemonizes itself. Its stderr goes to qemu.log (kept after daemonizing
 * because of -D), so a VM that dies later leaves its reason there; a refusal to start is read
 * back from it.
 */
async function startQemuDaemon(args: string[], qemuLog: string, signal?: AbortSignal): Promise<void> {
  await writeFile(qemuLog, '', { mode: 0o600, flag: 'a' });
  const r = await run('sh', ['-c', 'log=$1; shift; exec "$@" 2>>"$log"', 'sh', qemuLog, QEMU, ...args], { signal, timeoutMs: 30_000, allowFailure: true });
  if (r.exitCode !== 0) {
    const tail = (await readFile(qemuLog, 'utf8').catch(() => '')).trim().split('\n').slice(-10).join('\n    ');
    throw new LabError(
      `qemu refused to start (exit ${r.exitCode}):\n    ${tail || r.stderr.trim()}`,
      `its whole output is in ${qemuLog} (a taken host port means another service or lab uses it)`,
    );
  }
}

/**
 * The pid is a qemu started for this lab directory: its argument vector holds exactly this
 * lab's pid file (pids get reused, and /x/lab2 must not pass for /x/lab).
 */
export async function isOurQemu(pid: number, stateDir: string): Promise<boolean> {
  if (!isProcessAlive(pid)) return false;
  const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
  const pidFileArg = argv.indexOf('-pidfile');
  return basename(argv[0] ?? '').startsWith('qemu-system') && pidFileArg > 0 && argv[pidFileArg + 1] === join(stateDir, LAB_FILES.qemuPid);
}

/** Asks qemu to quit, kills it if it has not gone within the grace period, and gives up (with the reason) if even that fails. */
export async function stopQemu(stateDir: string, opts: { graceMs?: number; killWaitMs?: number } = {}): Promise<void> {
  const pidFile = join(stateDir, LAB_FILES.qemuPid);
  const pid = await readPid(pidFile);
  if (pid && (await isOurQemu(pid, stateDir))) await terminateProcess(pid, opts);
  await rm(pidFile, { force: true });
  await rm(join(stateDir, LAB_FILES.monitor), { force: true });
}

/**
 * SIGTERM, then SIGKILL after `graceMs`; a process still there `killWaitMs` after SIGKILL is
 * stuck in the kernel (state D: a hung disk or network file system) and no signal will move
 * it, so this fails with that reason instead of waiting forever.
 */
export async function terminateProcess(pid: number, { graceMs = 10_000, killWaitMs = 5_000 } = {}): Promise<void> {
  const send = (signal: NodeJS.Signals) => {
    try {
      process.kill(pid, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  };
  send('SIGTERM');
  if (await waitForExit(pid, graceMs)) return;
  send('SIGKILL');
  if (await waitForExit(pid, killWaitMs)) return;
  const state = (await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')).replace(/^.*\) /, '').slice(0, 1);
  throw new LabError(
    `process ${pid} is still there ${Math.round(killWaitMs / 1000)}s after SIGKILL (state ${state || '?'}${state === 'D' ? ': waiting in the kernel, usually on a hung disk or network file system' : ''})`,
    `see what it waits on: cat /proc/${pid}/stack; it goes once that file system answers or the host reboots, then run npm run lab:down again`,
  );
}

async function waitForExit(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (isProcessAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await sleep(100);
  }
  return true;
}
