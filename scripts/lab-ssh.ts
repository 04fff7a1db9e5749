// npm run lab:ssh -- [--config lab.yaml] [command ...]
import { spawnSync } from 'node:child_process';
import { LabError } from '../core/errors.ts';
import { runMain } from '../core/main.ts';
import { openExistingLab, renderConfigChanged, renderOtherLabs } from '../lab/existing.ts';
import { renderSshArgs } from '../lab/ssh.ts';

runMain(
  {
    string: ['config'],
    stopEarly: true,
    usage: `
npm run lab:ssh -- [--config FILE] [command ...]
  Opens a shell in the lab VM, or runs the command there.`,
  },
  async ({ args, progress }) => {
    const lab = await openExistingLab(args.config);
    const { state } = lab;
    if (!state) throw new LabError(`lab ${lab.config.name} is not running`, renderOtherLabs(lab) ?? 'start it: npm run lab:up', 3);
    const changed = renderConfigChanged(lab);
    if (changed) progress.warn(changed);
    const sshArgs = renderSshArgs({ stateDir: lab.stateDir, user: state.sshUser, ...lab.driver.sshEndpoint(state) }, { batch: false });
    // Interactive: the terminal belongs to ssh, so this is the one place that does not capture output.
    const r = spawnSync('ssh', [...(process.stdin.isTTY ? ['-t'] : []), ...sshArgs, ...args._.map(String)], { stdio: 'inherit' });
    return r.status ?? 1;
  },
);
