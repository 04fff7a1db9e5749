// Reads TAP on stdin (ava --tap), passes it through, and ends with `N passed, N failed, N skipped`.
import { text } from 'node:stream/consumers';
import { parseTap, renderCountsLine } from '../lab/acceptance/report.ts';

const tap = await text(process.stdin);
process.stdout.write(tap.endsWith('\n') ? tap : `${tap}\n`);
const report = await parseTap(tap);
if (report.count === 0) process.stdout.write('no tests ran\n');
for (const t of report.tests.filter((x) => !x.ok && !x.todo)) process.stdout.write(`failed: ${t.name}\n`);
process.stdout.write(renderCountsLine(report) + '\n');
process.exitCode = report.fail === 0 && !report.bailout && report.count > 0 ? 0 : 1;
