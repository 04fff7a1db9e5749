// npm run lab:down -- [--config lab.yaml]
import { runMain } from '../core/main.ts';
import { loadLabConfig } from '../config/load.ts';
import { labDown } from '../lab/down.ts';

runMain(
  {
    string: ['config'],
    usage: `
npm run lab:down -- [options]
  --config FILE   lab config (default: lab.yaml): names the lab; what is removed comes from
                  the lab's recorded state, whatever the file says now`,
  },
  async ({ args, progress }) => {
    const config = await loadLabConfig(args.config, { purpose: 'existing' });
    const { existed, configChanged, otherLabs } = await labDown({ config, progress });
    if (configChanged) process.stdout.write(`note: ${configChanged}\n`);
    if (otherLabs) process.stdout.write(`note: ${otherLabs}\n`);
    process.stdout.write(existed ? `lab ${config.name} removed\n` : `lab ${config.name} was not running; nothing left of it\n`);
  },
);
