// npm run drill:restore -- [--config lab.yaml] [--os-only] [--work DIR]
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runMain } from '../core/main.ts';
import { stateRoot } from '../core/paths.ts';
import { parseLabConfig } from '../config/load.ts';
import { readHostFacts } from '../config/host-facts.ts';
import { ConfigError } from '../core/errors.ts';
import { loadLabConfig } from '../config/load.ts';
import { IMAGE_SOURCE_USAGE, loadImageSource, type ImageSourceFlags } from '../images/source.ts';
import { QemuDriver } from '../lab/drivers/qemu.ts';
import { throwawayLabYaml } from '../lab/ports.ts';
import { drillPassed, renderDrillReport, runRestoreDrill } from '../lab/restore/drill.ts';

runMain(
  {
    string: ['config', 'lock', 'artifacts', 'work'],
    boolean: ['os-only'],
    usage: `
npm run drill:restore -- [options]
  Boots a throwaway lab "<name>-drill" (free ports, its own state), writes data, backs it up,
  destroys it, boots the exported image on different hardware from the server seed, restores,
  compares every checksum and runs the acceptance suite against the restored machine (its
  reports in WORK/suite/). Prints both RTOs (first boot to verified data, to a green suite).
  A red suite is a failed drill (exit 1). Your own lab is not touched.
  --config FILE   lab config the drill lab is made from (default: lab.yaml)
  --work DIR      where the backup and report go (default: a new temporary directory)
${IMAGE_SOURCE_USAGE}`,
  },
  async ({ args, progress, signal }) => {
    const base = await loadLabConfig(args.config);
    const name = `${base.name}-drill`.slice(0, 32);
    const parsed = parseLabConfig(await throwawayLabYaml(name, join(stateRoot(), name)), await readHostFacts(), stateRoot());
    if (!parsed.ok) throw new ConfigError('(drill lab)', parsed.problems);
    const config = { ...parsed.config, debian: base.debian, kubernetes: base.kubernetes, addons: base.addons, backup: base.backup };
    const workDir = args.work ? resolve(args.work) : await mkdtemp(join(tmpdir(), 'labsmith-drill-'));
    const report = await runRestoreDrill({ config, driver: new QemuDriver(), source: await loadImageSource(config, args as ImageSourceFlags), workDir, progress, signal });
    process.stdout.write(renderDrillReport(report) + `  files: ${workDir}\n`);
    return drillPassed(report) ? 0 : 1;
  },
);
