/**
 * lab:down: removes a lab from what it recorded (kind's delete works from the node): the
 * driver, its names and forwards come from the state file, so an edited lab.yaml or another
 * --driver can never orphan a running VM. Its files go last, once the VM is gone.
 */
import { rm } from 'node:fs/promises';
import type { Progress } from '../core/progress.ts';
import type { LabConfig } from '../config/lab-config.ts';
import { existingLabFor, renderConfigChanged, renderOtherLabs } from './existing.ts';
import { removeForwards } from './forwarding/nft-apply.ts';
import { acquireLabLock, labDirExists } from './state.ts';

export interface LabDownResult {
  existed: boolean;
  /** Set when lab.yaml no longer describes the lab that was removed. */
  configChanged?: string;
  /** Set when nothing was recorded for lab.yaml but other labs are (a renamed lab). */
  otherLabs?: string;
}

export async function labDown(opts: { config: LabConfig; progress: Progress }): Promise<LabDownResult> {
  const { progress } = opts;
  if (!(await labDirExists(opts.config.stateDir))) return { existed: false, otherLabs: renderOtherLabs(await existingLabFor(opts.config)) };
  const lock = await acquireLabLock(opts.config.stateDir, opts.config.name);
  try {
    const lab = await existingLabFor(opts.config);
    const { state, driver, stateDir } = lab;
    const configChanged = renderConfigChanged(lab);
    if (configChanged) progress.warn(configChanged);
    if (state?.forwarding) {
      progress.start('Removing host port forwarding');
      await removeForwards(state.name);
      progress.end(true);
    }
    if (state) {
      progress.start(`Stopping the VM (${driver.name} driver)`);
      await driver.down(state, stateDir);
      progress.end(true);
    }
    progress.start('Removing lab files');
    await rm(stateDir, { recursive: true, force: true });
    progress.end(true);
    return { existed: Boolean(state), configChanged };
  } finally {
    // The directory is gone; releasing is a no-op unless removal failed.
    await lock.release();
  }
}
