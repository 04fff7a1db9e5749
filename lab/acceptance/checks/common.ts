/**
 * What every check file shares: the kubectl and ssh command lines a person runs to see the
 * same thing (quoted so they run as printed), and the final `not ok` when there is no cluster
 * or no suite environment. Imports no suite set-up: the health checks stay light for lab:up.
 */
import { formatCommand, shellQuote } from '../../../core/exec.ts';
import type { KubeClient } from '../../kube/client.ts';
import { renderSshArgs } from '../../ssh.ts';
import type { ProbeOutcome } from '../check.ts';
import type { ClusterCheckContext, SuiteEnv } from '../cluster/env.ts';
import { isMissing } from '../cluster/maybe.ts';
import type { AcceptanceContext } from '../context.ts';

/** A Host no ingress route matches. */
export const UNKNOWN_HOST = 'unknown.labsmith.invalid';
/** Few attempts, close together: for things that are either right or wrong. */
export const QUICK_RETRY = { attempts: 3, intervalMs: 2000 };

export const kubectl = (ctx: AcceptanceContext, ...args: string[]) => formatCommand('kubectl', ['--kubeconfig', 'missing' in ctx.cluster ? 'KUBECONFIG' : ctx.cluster.kubeconfig, ...args]);

/**
 * The ssh command line that runs `cmd` on the node. Each word is quoted twice, as sshRun does:
 * once for the remote shell (ssh joins its arguments with spaces), once for the local one.
 */
export const remote = (ctx: AcceptanceContext, ...cmd: string[]) => (ctx.ssh ? formatCommand('ssh', [...renderSshArgs(ctx.ssh), '--', ...cmd.map(shellQuote)]) : `# on the node: ${formatCommand(cmd[0]!, cmd.slice(1))}`);

/** Checks that need a shell on the node skip for a server given by --host (no lab SSH key). */
export const needsSsh = (ctx: AcceptanceContext) => (ctx.ssh ? undefined : 'no SSH access to the node (server given by --host)');

export const fail = (detail: string, final = false): ProbeOutcome => ({ ok: false, detail, final });

export const isOutcome = (v: unknown): v is ProbeOutcome => typeof v === 'object' && v !== null && 'ok' in v && 'detail' in v;

/** The cluster, or a final `not ok` saying why there is none. */
export function clusterOf(ctx: AcceptanceContext): KubeClient | ProbeOutcome {
  return 'missing' in ctx.cluster ? fail(ctx.cluster.missing, true) : ctx.cluster.kube;
}

/** The suite's environment, or a final `not ok` saying why there is none. */
export function envOf(ctx: ClusterCheckContext): SuiteEnv | ProbeOutcome {
  if ('missing' in ctx.cluster) return fail(ctx.cluster.missing, true);
  if (isMissing(ctx.env)) return fail(ctx.env?.missing ?? 'the suite set-up did not run', true);
  return ctx.env as SuiteEnv;
}

/** The suite's environment when its set-up succeeded. */
export function readyEnv(ctx: ClusterCheckContext): SuiteEnv | undefined {
  return ctx.env && !isMissing(ctx.env) ? (ctx.env as SuiteEnv) : undefined;
}

let podCounter = 0;
/** A fresh probe pod name for this run. */
export const podName = (env: SuiteEnv, what: string) => `${what}-${env.runId}-${++podCounter}`.slice(0, 63);
