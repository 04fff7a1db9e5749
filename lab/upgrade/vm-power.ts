/**
 * Stopping and starting the lab VM around the rollback point: the guest is shut down from inside
 * (so its file systems are clean when the disk is snapshotted or rolled back), and started again
 * from the same disk by the driver, from the recorded state; both timed.
 */
import { LabError } from '../../core/errors.ts';
import { sleep } from '../../core/sleep.ts';
import type { LabDriver } from '../drivers/driver.ts';
import { remoteRun, type RemoteHost } from '../backup/remote.ts';
import { probeSshWhileBooting } from '../ssh.ts';
import { writeLabState, type LabState } from '../state.ts';

export interface PowerResult { durationMs: number }

/**
 * `systemctl poweroff` in the guest, then waits for the VM to be gone. One that is still there
 * after `timeoutMs` is stopped by the driver, and this fails: a forced stop is no clean rollback point.
 */
export async function shutDownLabVm(opts: { driver: LabDriver; state: LabState; stateDir: string; remote: RemoteHost; timeoutMs?: number; signal?: AbortSignal }): Promise<PowerResult> {
  const started = Date.now();
  const timeoutMs = opts.timeoutMs ?? 5 * 60_000;
  // The session ends with the machine (ssh's 255): only what the guest says before counts.
  const r = await remoteRun(opts.remote, ['sudo', 'systemctl', 'poweroff'], { allowFailure: true, signal: opts.signal, timeoutMs: 60_000 });
  if (r.exitCode !== 0 && r.exitCode !== 255) throw new LabError(`systemctl poweroff failed in the guest (exit ${r.exitCode}): ${r.stderr.trim()}`, 'is the lab user allowed to sudo?');
  while ((await opts.driver.status(opts.state, opts.stateDir)).running) {
    if (Date.now() - started > timeoutMs) {
      await opts.driver.down(opts.state, opts.stateDir);
      throw new LabError(`the lab VM did not power off within ${Math.round(timeoutMs / 1000)}s and was stopped by force`, 'its serial.log shows where the shutdown hung; take the rollback point again');
    }
    await sleep(1000, opts.signal);
  }
  return { durationMs: Date.now() - started };
}

/** Starts the VM again from its disk and waits until SSH answers; writes the new pid into the state. */
export async function startLabVmAgain(opts: { driver: LabDriver; state: LabState; stateDir: string; remote: RemoteHost; budgetMs?: number; signal?: AbortSignal }): Promise<PowerResult & { state: LabState }> {
  const { driver } = opts;
  if (!driver.restart) throw new LabError(`the ${driver.name} driver cannot start a lab from its existing disk`, 'use the qemu driver for upgrade rehearsals');
  const started = Date.now();
  const state: LabState = { ...opts.state, ...(await driver.restart(opts.state, opts.stateDir, opts.signal)) };
  await writeLabState(opts.stateDir, state);
  const budgetMs = opts.budgetMs ?? (state.accel === 'kvm' ? 5 * 60_000 : 20 * 60_000);
  let last = '';
  for (;;) {
    if (!(await driver.status(state, opts.stateDir)).running) {
      throw new LabError('the lab VM stopped while booting again', `see ${driver.consoleLog(opts.stateDir, state.name)}`);
    }
    const r = await probeSshWhileBooting(opts.remote, { signal: opts.signal });
    if (r.exitCode === 0) return { state, durationMs: Date.now() - started };
    last = r.stderr.trim().split('\n').pop() ?? '';
    if (Date.now() - started > budgetMs) throw new LabError(`the lab VM gave no SSH within ${Math.round(budgetMs / 1000)}s of its restart (last: ${last})`, `see ${driver.consoleLog(opts.stateDir, state.name)}`);
    await sleep(1000, opts.signal);
  }
}
