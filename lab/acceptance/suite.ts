/**
 * test:e2e: host checks, then (with a cluster) the suite's set-up, the cluster checks and its
 * teardown, as one TAP stream; tap-parser turns it into the summary, JUnit and JSON. A failed
 * set-up is a TAP bail-out; any failure leaves a log bundle; an interrupt still tears down.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { redact } from '../../core/redact.ts';
import { join } from 'node:path';
import { CancelledError } from '../../core/errors.ts';
import type { Check, CheckResult } from './check.ts';
import { runCheckList } from './check.ts';
import { DNS_IN_CLUSTER_CHECK } from './checks/dns.ts';
import { EGRESS_CHECKS } from './checks/egress.ts';
import { hostChecksFor, nodeReady, SYSTEM_NAMESPACES, systemPodsReady } from './checks/health.ts';
import { INGRESS_CHECKS } from './checks/ingress.ts';
import { LOGS_CHECK } from './checks/logs.ts';
import { STORAGE_CHECK } from './checks/storage.ts';
import { TLS_CHECKS } from './checks/tls.ts';
import { userChecks } from './checks/user.ts';
import type { UserCheck } from '../../config/lab-config.ts';
import { writeLogBundle } from './cluster/bundle.ts';
import { SetUpError, setUpSuite, tearDownSuite, type ClusterCheckContext, type SetUpOptions, type SuiteEnv } from './cluster/env.ts';
import type { AcceptanceContext } from './context.ts';
import { parseTap, renderJsonReport, renderJunit, renderSummary, type TapReport } from './report.ts';

export const REPORT_FILES = { tap: 'results.tap', junit: 'junit.xml', json: 'results.json' } as const;

/** In order: health first, positive controls before any blocked result, the policy deletion last. */
export const CLUSTER_CHECKS: Check<ClusterCheckContext>[] = [nodeReady, systemPodsReady, DNS_IN_CLUSTER_CHECK, ...INGRESS_CHECKS, ...TLS_CHECKS, ...EGRESS_CHECKS.slice(0, 2), STORAGE_CHECK, LOGS_CHECK, ...EGRESS_CHECKS.slice(2)];

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
  /** Where the public target listens (default 198.51.100.10:443 and :80). */
  publicTarget?: SetUpOptions['publicTarget'];
  /** lab.yaml `checks:`, run after the built-in checks under their own names (user/<name>). */
  userChecks?: UserCheck[];
  /**
   * On a machine without Kubernetes (ctx.cluster.noKubernetes): `fail` (default) reports each
   * cluster check `not ok` with the reason, as a lab's suite always has; `not-run` reports them
   * as skipped ("not run: …"), for a restore onto an OS-only machine, where no cluster is expected
   * and the host and user checks decide. Never reported as passed either way.
   */
  withoutKubernetes?: 'fail' | 'not-run';
}

/** An OS-only lab still runs the placeholder checks; a cluster's ingress is checked by the cluster checks. */
export function suiteChecks(ctx: AcceptanceContext, own: UserCheck[] = []): { host: Check<AcceptanceContext>[]; cluster: Check<ClusterCheckContext>[]; user: Check<AcceptanceContext>[] } {
  return { host: hostChecksFor(!('missing' in ctx.cluster)), cluster: CLUSTER_CHECKS, user: userChecks(own) };
}

export async function runAcceptanceSuite(opts: SuiteOptions): Promise<SuiteRun> {
  const { ctx } = opts;
  const lines: string[] = [];
  const write = (line: string) => {
    lines.push(line);
    opts.onTapLine?.(line);
  };
  const checks = suiteChecks(ctx, opts.userChecks);
  const { host, user: own } = checks;
  const notRun = 'missing' in ctx.cluster && ctx.cluster.noKubernetes && opts.withoutKubernetes === 'not-run' ? `not run: ${ctx.cluster.missing}` : undefined;
  const cluster = notRun ? checks.cluster.map((c) => ({ ...c, skip: () => notRun })) : checks.cluster;
  write('TAP version 14');
  write(`1..${host.length + cluster.length + own.length}`);
  let env: SuiteEnv | undefined;
  const leftovers: string[] = [];
  let bundle: string | undefined;
  let bailedOut = false;
  try {
    const results: CheckResult[] = await runCheckList(host, ctx, write, { first: 1, signal: opts.signal });
    const cctx: ClusterCheckContext = { ...ctx };
    if (!('missing' in ctx.cluster)) {
      try {
        env = await setUpSuite(ctx, { signal: opts.signal, publicTarget: opts.publicTarget, onMade: (what) => write(`# set up: ${what}`) });
        cctx.env = env;
      } catch (error) {
        if (error instanceof SetUpError) leftovers.push(...error.leftovers);
        if (opts.signal?.aborted) throw new CancelledError();
        bailedOut = true;
        write(`Bail out! the suite could not set up its test objects: ${(error instanceof Error ? error.message : String(error)).split('\n')[0]}`);
        cctx.env = { missing: 'set-up failed' };
      }
    }
    if (!bailedOut) results.push(...(await runCheckList(cluster, cctx, write, { first: host.length + 1, signal: opts.signal })));
    // The user's checks, after the built-in suite (they need no suite objects).
    if (!bailedOut) results.push(...(await runCheckList(own, ctx, write, { first: host.length + cluster.length + 1, signal: opts.signal })));
    const failed = results.filter((r) => !r.ok);
    if (failed.length || bailedOut) {
      const stamp = (opts.now?.() ?? new Date()).toISOString().replace(/[:.]/g, '-');
      bundle = await writeLogBundle(join(opts.reportDir, `bundle-${stamp}`), ctx, failed, [...SYSTEM_NAMESPACES, ...(env ? [env.ns.plain, env.ns.egress, env.ns.ingress] : [])], opts.signal);
    }
    if (opts.signal?.aborted) throw new CancelledError();
  } finally {
    // Runs once the check in progress has stopped (runCheckList awaits it), also after Ctrl-C.
    if (env) leftovers.push(...(await tearDownSuite(env)));
  }
  const tap = lines.join('\n') + '\n';
  const report = await parseTap(tap);
  await mkdir(opts.reportDir, { recursive: true });
  const files = { tap: join(opts.reportDir, REPORT_FILES.tap), junit: join(opts.reportDir, REPORT_FILES.junit), json: join(opts.reportDir, REPORT_FILES.json) };
  // Redacted: a check's output can carry a workload's secret value (core/redact.ts).
  await writeFile(files.tap, redact(tap));
  await writeFile(files.junit, redact(renderJunit(report, `labsmith acceptance (${opts.name})`)));
  await writeFile(files.json, redact(renderJsonReport(report)));
  return { report, tap, summary: renderSummary(report, `acceptance suite against ${opts.name}`), files, bundle, leftovers };
}
