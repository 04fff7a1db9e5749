/**
 * Stopping and starting the lab VM around a disk snapshot, without lab:down (which removes the
 * lab). From what exists: qemu's own argument vector is read from /proc before it stops and kept
 * in the lab directory, so the same VM (same disk, ports, seed) starts again, also later for
 * `--rollback`. The guest is asked to power off first, so its filesystems are clean in the snapshot.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LabError } from '../../core/errors.ts';
import { run } from '../../core/exec.ts';
import { LAB_FILES } from '../../core/paths.ts';
import { sleep } from '../../core/sleep.ts';
import { isOurQemu, stopQemu } from '../drivers/qemu.ts';
import { isProcessAlive } from '../state.ts';
import { remoteRun, type RemoteHost } from '../backup/remote.ts';

export interface VmControl {
  /** The qcow2 overlay the snapshot is taken of. */
  overlay: string;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export const QEMU_ARGV_FILE = 'upgrade-qemu-argv.json';

async function readPid(stateDir: string): Promise<number | undefined> {
  const text = await readFile(join(stateDir, LAB_FILES.qemuPid), 'utf8').catch(() => '');
  const pid = Number.parseInt(text.trim(), 10);
  return Number.isFinite(pid) ? pid : undefined;
}

async function waitForSsh(remote: RemoteHost, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const r = await remoteRun(remote, ['true'], { allowFailure: true, timeoutMs: 20_000, signal });
    if (r.exitCode === 0) return;
    await sleep(3000, signal);
  }
  throw new LabError(`the lab VM did not answer SSH within ${Math.round(timeoutMs / 1000)} s after it was started again`, 'see serial.log in the lab directory; roll back with npm run lab:upgrade -- --rollback');
}

export function qemuVmControl(stateDir: string, remote: RemoteHost, signal?: AbortSignal): VmControl {
  const argvFile = join(stateDir, QEMU_ARGV_FILE);
  return {
    overlay: join(stateDir, LAB_FILES.overlay),
    async stop() {
      const pid = await readPid(stateDir);
      if (!pid || !(await isOurQemu(pid, stateDir))) {
        if (existsSync(argvFile)) return; // already stopped by an earlier run: its argv is kept
        throw new LabError('the lab VM is not running and its qemu command line was never recorded', 'start the lab with npm run lab:up');
      }
      const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter((a) => a !== '');
      await writeFile(argvFile, `${JSON.stringify(argv)}\n`, { mode: 0o600 });
      await remoteRun(remote, ['sudo', 'systemctl', 'poweroff'], { allowFailure: true, timeoutMs: 30_000, signal });
      const deadline = Date.now() + 180_000;
      while (isProcessAlive(pid) && Date.now() < deadline) await sleep(1000, signal);
      await stopQemu(stateDir);
    },
    async start() {
      if (!existsSync(argvFile)) throw new LabError(`no recorded qemu command line in ${argvFile}`, 'the VM was not stopped by lab:upgrade; start it with npm run lab:up');
      const [qemu, ...args] = JSON.parse(await readFile(argvFile, 'utf8')) as string[];
      const log = join(stateDir, LAB_FILES.qemuLog);
      const r = await run('sh', ['-c', 'log=$1; shift; exec "$@" 2>>"$log"', 'sh', log, qemu!, ...args], { signal, timeoutMs: 30_000, allowFailure: true });
      if (r.exitCode !== 0) throw new LabError(`qemu did not start again (exit ${r.exitCode})`, `see ${log}`);
      await waitForSsh(remote, 10 * 60_000, signal);
    },
  };
}
