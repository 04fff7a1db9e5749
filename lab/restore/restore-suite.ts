/**
 * The acceptance suite after a restore (lab:restore and the drill): the same suite as
 * test:e2e, against the restored machine, its TAP/JUnit/JSON in the restore's report directory.
 * On a machine without Kubernetes (an OS-only image) there is no cluster: the cluster checks
 * are reported as not run (TAP SKIP with the reason), never as passed, and "green" means every
 * host and user check that applies passed and none failed. With Kubernetes, every check counts.
 */
import { readFile } from 'node:fs/promises';
import { LabError } from '../../core/errors.ts';
import { guestPort } from '../../cloud-init/user-data.ts';
import type { LabConfig, UserCheck } from '../../config/lab-config.ts';
import { acceptanceContextFromMachine, PLACEHOLDER_TLS_NAME, type AcceptanceContext } from '../acceptance/context.ts';
import { renderCountsLine, type TapReport } from '../acceptance/report.ts';
import { runAcceptanceSuite, type SuiteRun } from '../acceptance/suite.ts';
import { remoteRun, type RemoteHost } from '../backup/remote.ts';

export interface RestoreSuiteOutcome {
  green: boolean;
  /** `passed` counts only checks that ran and passed; `notRun` the skipped ones. */
  counts: { total: number; passed: number; failed: number; notRun: number };
  /** Why checks did not run, grouped by reason. */
  notRun: { reason: string; count: number }[];
  /** The failed checks: name (saw: detail). */
  failed: string[];
  /** What "green" meant for this machine. */
  meaning: string;
  files: { tap: string; junit: string; json: string };
  bundle?: string;
  leftovers: string[];
}

export const GREEN_WITH_CLUSTER = 'a cluster ran: every host, cluster and user check that ran passed and none failed';
export const GREEN_WITHOUT_KUBERNETES =
  'no Kubernetes on the machine (OS-only image), so no cluster: every host check that applies and every user check (the restored data among them) passed and none failed; the cluster checks did not run and are not counted as passed';

/** The suite's report → the restore's verdict (pure). */
export function summarizeRestoreSuite(run: { report: TapReport; files: SuiteRun['files']; bundle?: string; leftovers: string[] }, noKubernetes: boolean): RestoreSuiteOutcome {
  const r = run.report;
  const skipped = r.tests.filter((t) => t.skip);
  const reasons = new Map<string, number>();
  for (const t of skipped) reasons.set(String(t.skip), (reasons.get(String(t.skip)) ?? 0) + 1);
  const failed = [...r.tests.filter((t) => !t.ok && !t.todo).map((t) => `${t.name}${t.diag?.detail ? ` (saw: ${String(t.diag.detail)})` : ''}`), ...(r.bailout ? [`bail out: ${r.bailout}`] : [])];
  return {
    // A suite that passed nothing proves nothing.
    green: failed.length === 0 && r.pass > 0,
    counts: { total: r.count, passed: r.pass, failed: failed.length, notRun: skipped.length },
    notRun: [...reasons].map(([reason, count]) => ({ reason, count })),
    failed,
    meaning: noKubernetes ? GREEN_WITHOUT_KUBERNETES : GREEN_WITH_CLUSTER,
    files: run.files,
    ...(run.bundle ? { bundle: run.bundle } : {}),
    leftovers: run.leftovers,
  };
}

/** The suite's lines in a restore's or drill's report (pure). */
export function renderRestoreSuiteLines(s: RestoreSuiteOutcome, indent = '  '): string[] {
  const c = s.counts;
  return [
    `${indent}acceptance suite: ${s.green ? 'green' : 'RED'}: ${c.passed} passed, ${c.failed} failed, ${c.notRun} not run (of ${c.total})`,
    ...s.notRun.map((n) => `${indent}  not run (${n.count}): ${n.reason}`),
    ...s.failed.map((f) => `${indent}  failed: ${f}`),
    `${indent}  green means: ${s.meaning}`,
    `${indent}  reports: ${s.files.tap}, ${s.files.junit}, ${s.files.json}`,
    ...(s.bundle ? [`${indent}  failure bundle: ${s.bundle}`] : []),
    ...(s.leftovers.length ? [`${indent}  could not remove: ${s.leftovers.join('; ')}`] : []),
  ];
}

/** Whether the restored machine has Kubernetes at all (kubeadm on its PATH). */
export async function targetHasKubernetes(remote: RemoteHost, signal?: AbortSignal): Promise<boolean> {
  const r = await remoteRun(remote, ['sh', '-c', 'command -v kubeadm'], { allowFailure: true, signal });
  // Only the shell's own answer counts: an SSH failure (255) is not "no Kubernetes".
  if (r.exitCode !== 0 && r.exitCode !== 1 && r.exitCode !== 127) throw new LabError(`cannot ask ${remote.host} whether it has kubeadm: ssh exited ${r.exitCode}: ${r.stderr.trim().split('\n').pop() ?? ''}`, 'check --host, --ssh-key and its host key in known_hosts');
  return r.exitCode === 0;
}

export async function runRestoreSuite(opts: { ctx: AcceptanceContext; name: string; reportDir: string; userChecks: UserCheck[]; signal?: AbortSignal; onTapLine?: (line: string) => void }): Promise<RestoreSuiteOutcome & { summary: string; countsLine: string }> {
  const run = await runAcceptanceSuite({ ctx: opts.ctx, name: opts.name, reportDir: opts.reportDir, userChecks: opts.userChecks, signal: opts.signal, onTapLine: opts.onTapLine, withoutKubernetes: 'not-run' });
  const noKubernetes = 'missing' in opts.ctx.cluster && opts.ctx.cluster.noKubernetes === true;
  return { ...summarizeRestoreSuite(run, noKubernetes), summary: run.summary, countsLine: renderCountsLine(run.report) };
}

/**
 * A server restored by `lab:restore --host`, as the suite reaches it: over SSH with the given
 * key; with a kubeconfig its ingress on 80/443 (as test:e2e --host), without one the OS-only
 * placeholder on the forwards' guest ports, its certificate issued for the server's FQDN.
 */
export async function acceptanceContextForRestoredServer(config: LabConfig, target: RemoteHost, opts: { caFile: string; kubeconfig?: string; signal?: AbortSignal }): Promise<AcceptanceContext> {
  const caCert = await readFile(opts.caFile, 'utf8').catch(() => {
    throw new LabError(`--ca ${opts.caFile} cannot be read`, "pass the certificate file the server's ingress chains to", 2);
  });
  const server = config.server;
  return acceptanceContextFromMachine({
    ssh: target,
    address: target.host,
    ports: opts.kubeconfig ? { http: 80, https: 443 } : { http: guestPort(config, 'http', 30080), https: guestPort(config, 'https', 30443) },
    caCert,
    tlsName: server?.domain ? `${server.hostname}.${server.domain}` : PLACEHOLDER_TLS_NAME,
    ingressDomain: server?.domain ?? config.addons.ingressDomain,
    dnsDomain: config.kubernetes.dnsDomain,
    cluster: opts.kubeconfig ? { kubeconfig: opts.kubeconfig } : { hasKubernetes: await targetHasKubernetes(target, opts.signal) },
    logTarget: server?.logTarget ?? config.addons.logTarget,
  });
}
