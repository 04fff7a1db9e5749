/**
 * A lab's state directory: what lab:up made, recorded so that every later command (lab:up's
 * leftover check, lab:down, lab:status, lab:ssh, test:e2e) works from what exists, never from
 * flags or the current lab.yaml; and a lock so two commands on the same lab never race.
 */
import { readFileSync } from 'node:fs';
import { link, mkdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { LabError } from '../core/errors.ts';
import { LAB_FILES } from '../core/paths.ts';
import type { Forward, LabConfig } from '../config/lab-config.ts';

/** Bumped when a field lab:down or lab:status relies on changes meaning. */
export const LAB_STATE_VERSION = 2;

export interface LabState {
  /** Absent in state written before versions existed (read as 1). */
  version?: number;
  name: string;
  driver: string;
  accel: 'kvm' | 'tcg';
  startedAt: string;
  /** The lab directory the state was written in. */
  stateDir?: string;
  /** false while lab:up is still creating the VM (a crash then leaves this state behind). */
  complete?: boolean;
  hostAddress: string;
  forwards: Forward[];
  sshUser: string;
  imageDir: string;
  /** Process id of the VM (qemu driver). */
  pid?: number;
  /** The qemu argv the VM was started with (qemu driver): a restart from the same disk reuses it. */
  qemuArgs?: string[];
  /** The VM's address on its own network (libvirt driver). */
  vmAddress?: string;
  /** The libvirt connection the lab was created on (libvirt driver). */
  libvirtUri?: string;
  /** How the libvirt VM is networked (nat: behind labsmith's forwards; bridge: its own address). */
  networkMode?: 'nat' | 'bridge';
  /** Host ports are forwarded by labsmith's nftables table (drivers that do not forward themselves). */
  forwarding?: boolean;
  /** false for an OS-only lab (no Kubernetes in its image). Absent in state written before it existed: OS-only. */
  kubernetes?: boolean;
  /** The cluster domain, for checks that resolve Service names. */
  dnsDomain?: string;
  /** The lab domain the ingress serves (*.<ingressDomain>). */
  ingressDomain?: string;
  /** The resolved config lab:up ran with, to tell the user when lab.yaml changed since. */
  config?: LabConfig;
}

export function statePath(stateDir: string): string {
  return join(stateDir, LAB_FILES.state);
}

/** The recorded state, upgraded to the current version; undefined when the lab has none. */
export async function readLabState(stateDir: string): Promise<LabState | undefined> {
  let text: string;
  try {
    text = await readFile(statePath(stateDir), 'utf8');
  } catch {
    return undefined;
  }
  let parsed: LabState;
  try {
    parsed = JSON.parse(text) as LabState;
  } catch {
    throw new LabError(`${statePath(stateDir)} is not valid JSON`, 'a lab:up was interrupted while writing it: stop the VM by hand if one runs, then remove the lab directory');
  }
  return upgradeLabState(parsed, stateDir);
}

/** Reads state of any earlier version as the current one (pure). */
export function upgradeLabState(state: LabState, stateDir: string): LabState {
  const version = state.version ?? 1;
  if (version > LAB_STATE_VERSION) {
    throw new LabError(`${statePath(stateDir)} was written by a newer labsmith (state version ${version}, this one reads up to ${LAB_STATE_VERSION})`, 'use the labsmith that created the lab to remove it');
  }
  // Version 1 had no stateDir, networkMode or completeness: a recorded v1 lab was complete.
  return { complete: true, ...state, version: LAB_STATE_VERSION, stateDir: state.stateDir ?? stateDir };
}

export async function writeLabState(stateDir: string, state: LabState): Promise<void> {
  // Written aside and linked into place: a crash never leaves a half-written state file.
  const tmp = `${statePath(stateDir)}.tmp-${process.pid}`;
  await writeFile(tmp, JSON.stringify({ ...state, version: LAB_STATE_VERSION, stateDir }, null, 2) + '\n', { mode: 0o600 });
  await rm(statePath(stateDir), { force: true });
  await link(tmp, statePath(stateDir));
  await unlink(tmp);
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

/**
 * Takes the lab's lock: a file holding our pid, made by link(2) from a complete temporary
 * file, so it never exists empty. A lock left by a dead process is taken over under a second
 * exclusive file (`lab.lock.takeover`): only the process that created that may remove the
 * stale lock, so two processes can never both take it over.
 */
export async function acquireLabLock(stateDir: string, labName: string): Promise<LabLock> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const path = join(stateDir, LAB_FILES.lock);
  const takeover = `${path}.takeover`;
  const mine = `${path}.${process.pid}-${randomBytes(4).toString('hex')}`;
  await writeFile(mine, String(process.pid), { mode: 0o600 });
  const busy = (holder: number) => new LabError(`lab "${labName}" is busy: another labsmith command (pid ${holder}) holds ${path}`, 'wait for it to finish, or stop it first');
  try {
    if (await tryLink(mine, path)) return lockHandle(path);
    const holder = await readHolder(path);
    if (holder && holder !== process.pid && isProcessAlive(holder)) throw busy(holder);
    // Stale: take the takeover lock (itself stale only if its maker died within milliseconds).
    if (!(await tryLink(mine, takeover))) {
      const other = await readHolder(takeover);
      if (other && isProcessAlive(other)) throw busy(other);
      await rm(takeover, { force: true });
      if (!(await tryLink(mine, takeover))) throw busy((await readHolder(takeover)) ?? 0);
    }
    try {
      // Under the takeover lock nobody else removes or makes the lock: check again, then replace it.
      const current = await readHolder(path);
      if (current && current !== process.pid && isProcessAlive(current)) throw busy(current);
      await rm(path, { force: true });
      if (!(await tryLink(mine, path))) throw busy((await readHolder(path)) ?? 0);
      return lockHandle(path);
    } finally {
      await rm(takeover, { force: true });
    }
  } finally {
    await rm(mine, { force: true });
  }
}

function lockHandle(path: string): LabLock {
  return {
    async release() {
      // Only our own lock: a lab:down that removed the directory has nothing left to release.
      if ((await readHolder(path)) === process.pid) await rm(path, { force: true });
    },
  };
}

async function tryLink(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

async function readHolder(path: string): Promise<number | undefined> {
  const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** The lab directory exists (for callers that must not create one). */
export async function labDirExists(stateDir: string): Promise<boolean> {
  return (await stat(stateDir).catch(() => undefined))?.isDirectory() ?? false;
}
