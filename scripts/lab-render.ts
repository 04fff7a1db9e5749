// npm run lab:render -- --out DIR [--config lab.yaml]
import { LabError } from '../core/errors.ts';
import { runMain } from '../core/main.ts';
import { loadLabConfig } from '../lab/config/load.ts';
import { renderLab } from '../lab/render.ts';

runMain(
  {
    string: ['config', 'out'],
    usage: `
npm run lab:render -- --out DIR [--config FILE]
  Writes the cloud-init seed and the resolved config a lab would get (secrets as placeholders).`,
  },
  async ({ args }) => {
    if (!args.out) throw new LabError('--out DIR is required', 'for example: npm run lab:render -- --out out/render', 2);
    const config = await loadLabConfig(args.config);
    for (const path of await renderLab(config, args.out)) process.stdout.write(`${path}\n`);
  },
);
