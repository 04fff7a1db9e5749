/**
 * Stopping and starting the lab VM around a disk snapshot, without lab:down (which removes the
 * lab): the guest powers itself off (clean filesystems in the snapshot) and the driver starts the
 * same VM again (same disk, ports, seed) from the qemu command line recorded in the lab's state,
 * also later for `--rollback`.
 */
import type { LabDriver } from '../drivers/driver.ts';
import { readLabState, type LabState } from '../state.ts';
import type { RemoteHost } from '../backup/remote.ts';
import { shutDownLabVm, startLabVmAgain } from './vm-power.ts';

export interface VmControl {
  /** The qcow2 overlay the snapshot is taken of. */
  overlay: string;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export function labVmControl(opts: { driver: LabDriver; state: LabState; stateDir: string; overlay: string; remote: RemoteHost; signal?: AbortSignal }): VmControl {
  const { driver, stateDir, remote, signal } = opts;
  // The pid changes at each start: always act on the state as last written.
  const current = async () => (await readLabState(stateDir)) ?? opts.state;
  return {
    overlay: opts.overlay,
    async stop() {
      const state = await current();
      // Already stopped (an earlier run, or --rollback after a failed step): nothing to power off.
      if (!(await driver.status(state, stateDir)).running) return;
      await shutDownLabVm({ driver, state, stateDir, remote, signal });
    },
    async start() {
      await startLabVmAgain({ driver, state: await current(), stateDir, remote, signal });
    },
  };
}
