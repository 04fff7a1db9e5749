// npm run lab:schema -- [--out lab.schema.json]
import { writeFile } from 'node:fs/promises';
import { runMain } from '../core/main.ts';
import { renderLabConfigJsonSchema } from '../config/schema.ts';

runMain(
  { string: ['out'], default: { out: 'lab.schema.json' }, usage: 'npm run lab:schema -- [--out FILE]   (- for stdout)' },
  async ({ args }) => {
    const schema = renderLabConfigJsonSchema();
    if (args.out === '-') process.stdout.write(schema);
    else {
      await writeFile(args.out, schema);
      process.stdout.write(`wrote ${args.out}\n`);
    }
  },
);
