// npm run lab:down -- [--config lab.yaml]
import { runMain } from '../core/main.ts';
import { loadLabConfig } from '../config/load.ts';
import { labDown } from '../lab/down.ts';
import { getDriver } from '../lab/drivers/index.ts';
import { readLabState } from '../lab/state.ts';

runMain(
  {
    string: ['config'],
    usage: `
npm run lab:down -- [options]
  --config FILE   lab config (default: lab.yaml)`,
  },
  async ({ args, progress }) => {
    const config = await loadLabConfig(args.config);
    const state = await readLabState(config.stateDir);
    const { existed } = await labDown({ config, driver: getDriver(state?.driver ?? 'qemu'), progress });
    process.stdout.write(existed ? `lab ${config.name} removed\n` : `lab ${config.name} was not running; nothing left of it\n`);
  },
);
