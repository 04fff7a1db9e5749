// npm run lab:status -- [--config lab.yaml] [--json]
import { runMain } from '../core/main.ts';
import { loadLabConfig } from '../config/load.ts';
import { labStatus, renderLabStatus } from '../lab/status.ts';

runMain(
  {
    string: ['config'],
    usage: `
npm run lab:status -- [options]
  --config FILE   lab config (default: lab.yaml)
  --json          machine-readable
Exit code: 0 running, 3 not running.`,
  },
  async ({ args }) => {
    const report = await labStatus(await loadLabConfig(args.config, { purpose: 'existing' }));
    process.stdout.write(args.json ? JSON.stringify(report, null, 2) + '\n' : renderLabStatus(report));
    return report.running ? 0 : 3;
  },
);
