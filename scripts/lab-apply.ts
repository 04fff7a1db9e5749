// npm run lab:apply -- [--config lab.yaml] [--lock FILE]
import { resolve } from 'node:path';
import { runMain } from '../core/main.ts';
import { DEFAULT_LOCK_FILE } from '../images/lock/lock.ts';
import { renderChanges } from '../lab/workloads/changes.ts';
import { reapplyWorkloads } from '../lab/workloads/reapply.ts';

runMain(
  {
    string: ['config', 'lock'],
    usage: `
npm run lab:apply -- [--config FILE] [--lock FILE]
  Validates the workloads lab.yaml lists and applies them again to the running lab (server-side
  apply in the guest), printing per object created, configured or unchanged, then waits for
  their rollouts. Exit codes: 0 applied, 1 apply or rollout failed, 2 bad input (each problem
  with file:line and field path), 3 lab not running.`,
  },
  async ({ args, progress, signal }) => {
    const changes = await reapplyWorkloads({ configFile: args.config, lockFile: resolve(args.lock ?? DEFAULT_LOCK_FILE), progress, signal });
    process.stdout.write(renderChanges(changes));
  },
);
