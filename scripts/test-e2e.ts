// npm run test:e2e -- [--config lab.yaml] [--report-dir DIR] [--tap]
import { join } from 'node:path';
import { runMain } from '../core/main.ts';
import { LAB_FILES } from '../core/paths.ts';
import { runAcceptanceSuite } from '../lab/acceptance/suite.ts';
import { loadLabConfig } from '../lab/config/load.ts';
import { getDriver } from '../lab/drivers/index.ts';
import { readLabState } from '../lab/state.ts';

runMain(
  {
    string: ['config', 'report-dir'],
    boolean: ['tap'],
    usage: `
npm run test:e2e -- [options]
  --config FILE       lab config (default: lab.yaml)
  --report-dir DIR    where results.tap, junit.xml and results.json go (default: report/ in the lab directory)
  --tap               print the TAP stream instead of the summary`,
  },
  async ({ args }) => {
    const config = await loadLabConfig(args.config);
    const state = await readLabState(config.stateDir);
    const run = await runAcceptanceSuite({
      config,
      driver: getDriver(state?.driver ?? 'qemu'),
      reportDir: args['report-dir'] ?? join(config.stateDir, LAB_FILES.report),
      onTapLine: args.tap ? (l) => process.stdout.write(l + '\n') : undefined,
    });
    if (!args.tap) process.stdout.write(run.summary);
    process.stderr.write(`reports: ${run.files.junit}, ${run.files.json}, ${run.files.tap}\n`);
    return run.report.fail === 0 && !run.report.bailout ? 0 : 1;
  },
);
