// npm run lab:ssh -- [--config lab.yaml] [command ...]
import { spawnSync } from 'node:child_process';
import { LabError } from '../core/errors.ts';
import { runMain } from '../core/main.ts';
import { loadLabConfig } from '../config/load.ts';
import { getDriver } from '../lab/drivers/index.ts';
import { renderSshArgs } from '../lab/ssh.ts';
import { readLabState } from '../lab/state.ts';

runMain(
  {
    string: ['config'],
    stopEarly: true,
    usage: `
npm run lab:ssh -- [--config FILE] [command ...]
  Opens a shell in the lab VM, or runs the command there.`,
  },
  async ({ args }) => {
    const config = await loadLabConfig(args.config);
    const state = await readLabState(config.stateDir);
    if (!state) throw new LabError(`lab ${config.name} is not running`, 'start it: npm run lab:up');
    const endpoint = getDriver(state.driver).sshEndpoint(state);
    const sshArgs = renderSshArgs({ stateDir: config.stateDir, user: state.sshUser, ...endpoint }, { batch: false });
    // Interactive: the terminal belongs to ssh, so this is the one place that does not capture output.
    const r = spawnSync('ssh', [...(process.stdin.isTTY ? ['-t'] : []), ...sshArgs, ...args._.map(String)], { stdio: 'inherit' });
    return r.status ?? 1;
  },
);
