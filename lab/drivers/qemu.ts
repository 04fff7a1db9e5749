/**
 * The default driver: qemu with no daemon. An overlay qcow2 on the cached base image, UEFI,
 * virtio disk/NIC, user networking with one hostfwd per forward, serial console to a file.
 * qemu daemonizes itself and writes a pid file; lab:down finds it there.
 */
import { copyFile, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { LabError } from '../../core/errors.ts';
import { run } from '../../core/exec.ts';
import { LAB_FILES } from '../../core/paths.ts';
import { parseSize } from '../../core/units.ts';
import { sleep } from '../../core/sleep.ts';
import { isProcessAlive, type LabState } from '../state.ts';
import type { LabDriver, VmStartRequest, VmStatus } from './driver.ts';
import { renderQemuArgs } from './qemu-args.ts';

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';
const QEMU = 'qemu-system-x86_64';

export class QemuDriver implements LabDriver {
  readonly name = 'qemu';
  readonly capabilities = { forwardsPortsItself: true, needsDaemon: false };

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
    await copyFile(OVMF_VARS, vars);
    step.onUndo('UEFI variables', () => rm(vars, { force: true }));

    const args = renderQemuArgs({
      name: config.name,
      accel: request.accel,
      cpus: config.vm.cpus,
      memoryMiB: Math.floor(parseSize(config.vm.memory)! / 2 ** 20),
      overlay,
      seedIso: request.seedIso,
      firmwareCode: OVMF_CODE,
      firmwareVars: vars,
      hostAddress: config.network.hostAddress,
      forwards: config.network.forwards,
      serialLog: this.consoleLog(dir),
      pidFile,
      qmpSocket: join(dir, LAB_FILES.monitor),
    });
    // Registered before the start: if qemu daemonized but a later step fails, it is stopped.
    step.onUndo('VM process', () => stopQemu(dir));
    await run(QEMU, args, {
      signal: step.signal,
      timeoutMs: 30_000,
      hint: 'qemu refused to start: its message is above (a taken host port means another service or lab uses it)',
    });
    const pid = await readPid(pidFile);
    if (!pid) throw new LabError(`qemu started but wrote no pid to ${pidFile}`, 'see the serial log in the lab directory');
    return { pid };
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

/** The pid is a qemu whose command line names this lab's directory (pids get reused). */
async function isOurQemu(pid: number, stateDir: string): Promise<boolean> {
  if (!isProcessAlive(pid)) return false;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmdline.includes('qemu-system') && cmdline.includes(stateDir);
}

/** Asks qemu to quit, then kills it if it has not gone within the grace period. */
export async function stopQemu(stateDir: string, graceMs = 10_000): Promise<void> {
  const pidFile = join(stateDir, LAB_FILES.qemuPid);
  const pid = await readPid(pidFile);
  if (pid && (await isOurQemu(pid, stateDir))) {
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + graceMs;
    while (isProcessAlive(pid) && Date.now() < deadline) await sleep(100);
    if (isProcessAlive(pid)) {
      process.kill(pid, 'SIGKILL');
      while (isProcessAlive(pid)) await sleep(50);
    }
  }
  await rm(pidFile, { force: true });
  await rm(join(stateDir, LAB_FILES.monitor), { force: true });
}
