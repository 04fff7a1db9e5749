/**
 * Guest readiness as named requirements (after lima's hostagent requirements): each has a
 * description, one probe, a time limit and a hint shown on failure, and one abortable loop
 * polls it. A probe answers "ready", "not yet (what it saw)", or throws to stop at once.
 */
import { LabError } from '../core/errors.ts';
import { sleep } from '../core/sleep.ts';

export type ProbeResult = { ready: true } | { ready: false; detail: string };

export interface Requirement<C> {
  /** What is awaited, as the user reads it: "SSH answers". */
  description: string;
  timeoutMs(ctx: C): number;
  /** Shown when the requirement is not met in time. */
  hint: string;
  /** Pause between probes that said "not yet". */
  intervalMs: number;
  /** One attempt; `remainingMs` bounds how long it may itself wait. */
  probe(ctx: C, signal: AbortSignal, remainingMs: number): Promise<ProbeResult>;
}

/** Polls until the requirement holds, its time is up, a probe throws, or the signal aborts. */
export async function waitForRequirement<C>(requirement: Requirement<C>, ctx: C, signal: AbortSignal): Promise<void> {
  const timeoutMs = requirement.timeoutMs(ctx);
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    signal.throwIfAborted();
    const result = await requirement.probe(ctx, signal, Math.max(1000, deadline - Date.now()));
    if (result.ready) return;
    last = result.detail;
    if (Date.now() >= deadline) throw new LabError(`${requirement.description}: not after ${Math.round(timeoutMs / 1000)}s (last: ${last})`, requirement.hint);
    await sleep(requirement.intervalMs, signal);
  }
}
