/**
 * The acceptance suite's frame. A check has a description, a probe, a timeout, a retry
 * policy, a hint and the command that reproduces it by hand. Checks run in order and the
 * outcome is written as TAP (with a YAML block of diagnostics per failure).
 */
import { stringify } from 'yaml';
import { CancelledError } from '../../core/errors.ts';
import { sleep } from '../../core/sleep.ts';

export interface ProbeOutcome {
  ok: boolean;
  /** What was seen, in one or two lines. */
  detail: string;
  /** Retrying cannot change the outcome (e.g. there is no cluster to ask). */
  final?: boolean;
}

export interface Check<C> {
  id: string;
  description: string;
  timeoutMs: number;
  /** Attempts within the timeout; waits `intervalMs` between them. */
  retry: { attempts: number; intervalMs: number };
  hint: string;
  /** The command a person runs to see the same thing. */
  reproduce(ctx: C): string;
  probe(ctx: C, signal: AbortSignal): Promise<ProbeOutcome>;
  /** Returns a reason to skip, or undefined to run. */
  skip?(ctx: C): string | undefined;
}

export interface CheckResult {
  id: string;
  description: string;
  ok: boolean;
  skipped?: string;
  detail: string;
  attempts: number;
  durationMs: number;
  hint: string;
  reproduce: string;
}

/** How long a probe may take to stop once its signal aborts before the check gives up on it. */
const STOP_GRACE_MS = 2000;

/**
 * Runs one check: attempts until it passes, its timeout or its attempts run out. Every wait
 * takes the signal; when `outer` aborts, the probe in progress is aborted and awaited (so any
 * cleanup after the check runs once it has stopped), then CancelledError is thrown.
 */
export async function runCheck<C>(check: Check<C>, ctx: C, now: () => number = Date.now, outer?: AbortSignal): Promise<CheckResult> {
  const base = { id: check.id, description: check.description, hint: check.hint, reproduce: check.reproduce(ctx) };
  const skipped = check.skip?.(ctx);
  if (skipped) return { ...base, ok: true, skipped, detail: skipped, attempts: 0, durationMs: 0 };
  if (outer?.aborted) throw new CancelledError();
  const started = now();
  const deadline = started + check.timeoutMs;
  let last: ProbeOutcome = { ok: false, detail: 'not run' };
  let attempts = 0;
  while (attempts < check.retry.attempts) {
    attempts += 1;
    const remaining = deadline - now();
    if (remaining <= 0) break;
    last = await attempt(check, ctx, remaining, outer);
    if (outer?.aborted) throw new CancelledError();
    if (last.ok || last.final) break;
    if (attempts < check.retry.attempts && now() + check.retry.intervalMs < deadline) {
      try {
        await sleep(check.retry.intervalMs, outer);
      } catch {
        throw new CancelledError();
      }
    } else if (attempts < check.retry.attempts) break;
  }
  return { ...base, ok: last.ok, detail: last.detail, attempts, durationMs: now() - started };
}

/** One probe with its own signal: aborted at the check's deadline or by `outer`, and awaited until it stops. */
async function attempt<C>(check: Check<C>, ctx: C, remainingMs: number, outer?: AbortSignal): Promise<ProbeOutcome> {
  const controller = new AbortController();
  const stop = () => controller.abort(outer?.reason);
  outer?.addEventListener('abort', stop, { once: true });
  // A referenced timer (AbortSignal.timeout's is not) keeps the process alive while a probe hangs.
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
    controller.abort();
  }, remainingMs);
  const probe = check.probe(ctx, controller.signal).then(
    (outcome): ProbeOutcome => outcome,
    (error: unknown): ProbeOutcome => ({ ok: false, detail: error instanceof Error ? error.message.split('\n').slice(0, 3).join(' | ') : String(error) }),
  );
  const aborted = new Promise<void>((resolve) => controller.signal.addEventListener('abort', () => resolve(), { once: true }));
  try {
    const first = await Promise.race([probe, aborted]);
    if (first) return expired ? { ok: false, detail: `timed out after ${check.timeoutMs}ms` } : first;
    // Aborted: wait for the probe to stop (every probe honours its signal), but not forever.
    let graceTimer: NodeJS.Timeout | undefined;
    const stopped = await Promise.race([probe.then(() => true), new Promise<false>((resolve) => (graceTimer = setTimeout(() => resolve(false), STOP_GRACE_MS)))]);
    clearTimeout(graceTimer);
    const why = expired ? `timed out after ${check.timeoutMs}ms` : 'cancelled';
    return { ok: false, detail: stopped ? why : `${why}; the probe did not stop within ${STOP_GRACE_MS}ms of being aborted` };
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener('abort', stop);
  }
}

/** Runs checks as one TAP stream with its header. Throws CancelledError when `signal` aborts. */
export async function runChecks<C>(checks: Check<C>[], ctx: C, write: (line: string) => void, signal?: AbortSignal): Promise<CheckResult[]> {
  write('TAP version 14');
  write(`1..${checks.length}`);
  return runCheckList(checks, ctx, write, { first: 1, signal });
}

/** Runs checks as TAP points numbered from `first` (the caller writes the header and plan). Throws CancelledError when `signal` aborts. */
export async function runCheckList<C>(checks: Check<C>[], ctx: C, write: (line: string) => void, opts: { first: number; signal?: AbortSignal }): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const [i, check] of checks.entries()) {
    if (opts.signal?.aborted) throw new CancelledError();
    const result = await runCheck(check, ctx, Date.now, opts.signal);
    results.push(result);
    write(renderTapPoint(opts.first + i, result));
  }
  return results;
}

/** One TAP test point with its diagnostics (pure). */
export function renderTapPoint(n: number, r: CheckResult): string {
  const name = `${r.id}: ${r.description}`.replace(/#/g, '\\#');
  if (r.skipped) return `ok ${n} - ${name} # SKIP ${r.skipped}`;
  const head = `${r.ok ? 'ok' : 'not ok'} ${n} - ${name} # time=${r.durationMs}ms`;
  const diag = { id: r.id, detail: r.detail, attempts: r.attempts, duration_ms: r.durationMs, reproduce: r.reproduce, ...(r.ok ? {} : { hint: r.hint }) };
  const yaml = stringify(diag, { lineWidth: 0 }).trimEnd().split('\n').map((l) => `    ${l}`).join('\n');
  return `${head}\n  ---\n${yaml}\n  ...`;
}
