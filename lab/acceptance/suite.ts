/** test:e2e: runs the checks against a lab, writes TAP, and turns it into summary, JUnit and JSON. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LabError } from '../../core/errors.ts';
import type { LabConfig } from '../config/schema.ts';
import type { LabDriver } from '../drivers/driver.ts';
import { readLabState } from '../state.ts';
import { runChecks } from './check.ts';
import { acceptanceContextFromLab } from './context.ts';
import { OS_CHECKS } from './os-checks.ts';
import { parseTap, renderJsonReport, renderJunit, renderSummary, type TapReport } from './report.ts';

export const REPORT_FILES = { tap: 'results.tap', junit: 'junit.xml', json: 'results.json' } as const;

export interface SuiteRun {
  report: TapReport;
  tap: string;
  summary: string;
  files: { tap: string; junit: string; json: string };
}

export async function runAcceptanceSuite(opts: { config: LabConfig; driver: LabDriver; reportDir: string; onTapLine?: (line: string) => void }): Promise<SuiteRun> {
  const { config, driver } = opts;
  const state = await readLabState(config.stateDir);
  if (!state) throw new LabError(`lab ${config.name} is not running`, 'start it first: npm run lab:up');
  const ctx = await acceptanceContextFromLab(state, config.stateDir, driver.sshEndpoint(state));
  const lines: string[] = [];
  await runChecks(OS_CHECKS, ctx, (line) => {
    lines.push(line);
    opts.onTapLine?.(line);
  });
  const tap = lines.join('\n') + '\n';
  const report = await parseTap(tap);
  await mkdir(opts.reportDir, { recursive: true });
  const files = { tap: join(opts.reportDir, REPORT_FILES.tap), junit: join(opts.reportDir, REPORT_FILES.junit), json: join(opts.reportDir, REPORT_FILES.json) };
  await writeFile(files.tap, tap);
  await writeFile(files.junit, renderJunit(report, `labsmith acceptance (${config.name})`));
  await writeFile(files.json, renderJsonReport(report));
  return { report, tap, summary: renderSummary(report, `acceptance suite against lab ${config.name}`), files };
}
