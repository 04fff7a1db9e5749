/** lab:down: stops the VM and removes every file of the lab. */
import { rm } from 'node:fs/promises';
import type { Progress } from '../core/progress.ts';
import type { LabConfig } from '../config/lab-config.ts';
import type { LabDriver } from './drivers/driver.ts';
import { removeForwards } from './forwarding/nft-apply.ts';
import { acquireLabLock, readLabState } from './state.ts';

export async function labDown(opts: { config: LabConfig; driver: LabDriver; progress: Progress }): Promise<{ existed: boolean }> {
  const { config, progress } = opts;
  const lock = await acquireLabLock(config.stateDir, config.name);
  try {
    const state = await readLabState(config.stateDir);
    if (state?.forwarding) {
      progress.start('Removing host port forwarding');
      await removeForwards(config.name);
      progress.end(true);
    }
    if (state) {
      progress.start('Stopping the VM');
      await opts.driver.down(state, config.stateDir);
      progress.end(true);
    }
    progress.start('Removing lab files');
    await rm(config.stateDir, { recursive: true, force: true });
    progress.end(true);
    return { existed: Boolean(state) };
  } finally {
    // The directory is gone; releasing is a no-op unless removal failed.
    await lock.release();
  }
}
