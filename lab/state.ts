/**
 * A lab's state directory: what lab:up made, recorded so lab:down and lab:status can find
 * it, and a lock so two lab:up runs of the same lab never race.
 */
import { readFileSync } from 'node:fs';
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LabError } from '../core/errors.ts';
import { LAB_FILES } from '../core/paths.ts';
import type { Forward } from '../config/lab-config.ts';

export interface LabState {
  name: string;
  driver: string;
  accel: 'kvm' | 'tcg';
  startedAt: string;
  hostAddress: string;
  forwards: Forward[];
  sshUser: string;
  imageDir: string;
  /** Process id of the VM (qemu driver). */
  pid?: number;
  /** The VM's address on its own network (libvirt driver). */
  vmAddress?: string;
  /** The libvirt connection the lab was created on (libvirt driver). */
  libvirtUri?: string;
  /** Host ports are forwarded by labsmith's nftables table (drivers that do not forward themselves). */
  forwarding?: boolean;
  /** false for an OS-only lab (no Kubernetes in its image). Absent in state written before it existed: OS-only. */
  kubernetes?: boolean;
  /** The cluster domain, for checks that resolve Service names. */
  dnsDomain?: string;
  /** The lab domain the ingress serves (*.<ingressDomain>). */
  ingressDomain?: string;
}

export function statePath(stateDir: string): string {
  return join(stateDir, LAB_FILES.state);
}

export async function readLabState(stateDir: string): Promise<LabState | undefined> {
  try {
    return JSON.parse(await readFile(statePath(stateDir), 'utf8')) as LabState;
  } catch {
    return undefined;
  }
}

export async function writeLabState(stateDir: string, state: LabState): Promise<void> {
  await writeFile(statePath(stateDir), JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
}

/** True for a live process; a zombie (exited, not yet reaped) counts as gone. */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

export interface LabLock {
  release(): Promise<void>;
}

/** Takes the lab's lock (a file holding our pid); a lock left by a dead process is taken over. */
export async function acquireLabLock(stateDir: string, labName: string): Promise<LabLock> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const path = join(stateDir, LAB_FILES.lock);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(path, 'wx', 0o600);
      await fh.writeFile(String(process.pid));
      await fh.close();
      return { release: () => rm(path, { force: true }) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (holder && holder !== process.pid && isProcessAlive(holder)) {
        throw new LabError(`lab "${labName}" is busy: another labsmith command (pid ${holder}) holds ${path}`, 'wait for it to finish, or stop it first');
      }
      await rm(path, { force: true });
    }
  }
  throw new LabError(`could not take the lock ${path}`, 'remove the file if no labsmith command is running');
}
