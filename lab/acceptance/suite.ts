/**
 * test:e2e: host checks, then (with a cluster) the suite's set-up, the cluster checks and its
 * teardown, as one TAP stream; tap-parser turns it into the summary, JUnit and JSON. A failed
 * set-up is a TAP bail-out; any failure leaves a log bundle; an interrupt still tears down.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CancelledError } from '../../core/errors.ts';
import type { Check, CheckResult } from './check.ts';
import { runCheckList } from './check.ts';
import { CLUSTER_CHECKS, SYSTEM_NAMESPACES } from './cluster-checks.ts';
import { writeLogBundle } from './cluster/bundle.ts';
import { setUpSuite, tearDownSuite, type ClusterCheckContext, type SuiteEnv } from './cluster/env.ts';
import type { AcceptanceContext } from './context.ts';
import { hostChecksFor } from './os-checks.ts';
import { parseTap, renderJsonReport, renderJunit, renderSummary, type TapReport } from './report.ts';

export const REPORT_FILES = { tap: 'results.tap', junit: 'junit.xml', json: 'results.json' } as const;

export interface SuiteRun {
  report: TapReport;
  tap: string;
  summary: string;
  files: { tap: string; junit: string; json: string };
  /** Where the failure bundle went, when something failed. */
  bundle?: string;
  /** Teardown problems (objects that may be left behind). */
  leftovers: string[];
}

export interface SuiteOptions {
  ctx: AcceptanceContext;
  name: string;
  reportDir: string;
  onTapLine?: (line: string) => void;
  signal?: AbortSignal;
  now?: () => Date;
}

/** An OS-only lab still runs the placeholder checks; a cluster's ingress is checked by the cluster checks. */
export function suiteChecks(ctx: AcceptanceContext): { host: Check<AcceptanceContext>[]; cluster: Check<ClusterCheckContext>[] } {
  return { host: hostChecksFor(!('missing' in ctx.cluster)), cluster: CLUSTER_CHECKS };
}

export async function runAcceptanceSuite(opts: SuiteOptions): Promise<SuiteRun> {
  const { ctx } = opts;
  const lines: string[] = [];
  const write = (line: string) => {
    lines.push(line);
    opts.onTapLine?.(line);
  };
  const { host, cluster } = suiteChecks(ctx);
  write('TAP version 14');
  write(`1..${host.length + cluster.length}`);
  const results: CheckResult[] = await runCheckList(host, ctx, write, { first: 1, signal: opts.signal });
  let env: SuiteEnv | undefined;
  const leftovers: string[] = [];
  let bundle: string | undefined;
  let bailedOut = false;
  try {
    const cctx: ClusterCheckContext = { ...ctx };
    if (!('missing' in ctx.cluster) && !opts.signal?.aborted) {
      try {
        env = await setUpSuite(ctx, opts.signal);
        cctx.env = env;
      } catch (error) {
        if (opts.signal?.aborted) throw new CancelledError();
        bailedOut = true;
        write(`Bail out! the suite could not set up its test objects: ${(error instanceof Error ? error.message : String(error)).split('\n')[0]}`);
        cctx.env = { missing: 'set-up failed' };
      }
    }
    if (!bailedOut) results.push(...(await runCheckList(cluster, cctx, write, { first: host.length + 1, signal: opts.signal })));
    if (opts.signal?.aborted) throw new CancelledError();
    const failed = results.filter((r) => !r.ok);
    if (failed.length || bailedOut) {
      const stamp = (opts.now?.() ?? new Date()).toISOString().replace(/[:.]/g, '-');
      bundle = await writeLogBundle(join(opts.reportDir, `bundle-${stamp}`), ctx, failed, [...SYSTEM_NAMESPACES, ...(env ? [env.ns.plain, env.ns.egress] : [])]);
    }
  } finally {
    if (env) leftovers.push(...(await tearDownSuite(ctx, env)));
  }
  const tap = lines.join('\n') + '\n';
  const report = await parseTap(tap);
  await mkdir(opts.reportDir, { recursive: true });
  const files = { tap: join(opts.reportDir, REPORT_FILES.tap), junit: join(opts.reportDir, REPORT_FILES.junit), json: join(opts.reportDir, REPORT_FILES.json) };
  await writeFile(files.tap, tap);
  await writeFile(files.junit, renderJunit(report, `labsmith acceptance (${opts.name})`));
  await writeFile(files.json, renderJsonReport(report));
  return { report, tap, summary: renderSummary(report, `acceptance suite against ${opts.name}`), files, bundle, leftovers };
}
