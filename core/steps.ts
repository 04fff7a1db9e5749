/**
 * The step runner: a pipeline is a list of named steps, each with a timeout and a hint.
 * Steps register how to undo what they made; when a later step fails (or the user presses
 * Ctrl-C) the undo list runs in reverse, unless the caller asked to retain the mess.
 */
import { CancelledError, LabError, TimeoutError } from './errors.ts';
import { Progress } from './progress.ts';

export interface StepContext {
  signal: AbortSignal;
  progress: Progress;
  /** Register a cleanup for something this step created. */
  onUndo(title: string, undo: () => Promise<void>): void;
}

export interface Step<C> {
  /** An -ing phrase users see, e.g. "Writing cloud-init seed". */
  title: string;
  timeoutMs: number;
  /** Shown under the error when this step fails. */
  hint?: string;
  /** Steps that do not apply to this run (e.g. an OS-only image) are left out. */
  skip?: (ctx: C) => boolean;
  run(ctx: C, step: StepContext): Promise<void>;
}

export interface RunStepsOptions {
  progress: Progress;
  signal?: AbortSignal;
  /** Keep what the steps made when one fails. */
  retain?: boolean;
  /** Runs after a step failed and stopped, before anything is undone (e.g. to save its logs). */
  beforeUndo?: (failure: LabError, timings: StepTiming[]) => Promise<void>;
  /** How long an aborted step may take to stop before undo runs anyway (default 5s). */
  settleMs?: number;
}

export interface StepTiming {
  title: string;
  durationMs: number;
  ok: boolean;
}

export class StepFailedError extends LabError {
  constructor(
    readonly step: string,
    override readonly cause: unknown,
    fallbackHint?: string,
  ) {
    const inner = cause instanceof Error ? cause.message : String(cause);
    const hint = (cause instanceof LabError ? cause.hint : undefined) ?? fallbackHint;
    super(`${step} failed: ${inner}`, hint, cause instanceof LabError ? cause.exitCode : 1);
  }
}

export async function runSteps<C>(steps: Step<C>[], ctx: C, options: RunStepsOptions): Promise<StepTiming[]> {
  const undos: { title: string; undo: () => Promise<void> }[] = [];
  const timings: StepTiming[] = [];
  const { progress } = options;
  for (const step of steps) {
    if (step.skip?.(ctx)) continue;
    progress.start(step.title);
    try {
      await runWithTimeout(step, ctx, options.signal, progress, (title, undo) => undos.push({ title, undo }), options.settleMs ?? DEFAULT_SETTLE_MS);
      timings.push({ title: step.title, durationMs: progress.end(true), ok: true });
    } catch (error) {
      timings.push({ title: step.title, durationMs: progress.end(false), ok: false });
      const failure = withStepHint(step, error);
      await options.beforeUndo?.(failure, timings).catch((e: unknown) => progress.warn(`could not save the logs: ${e instanceof Error ? e.message : String(e)}`));
      if (options.retain) {
        if (undos.length) progress.warn(`--retain: left in place: ${undos.map((u) => u.title).join(', ')}`);
      } else {
        await undoAll(undos, progress);
      }
      throw failure;
    }
  }
  return timings;
}

/** Undo in reverse order; an undo that fails is reported and the rest still run. */
export async function undoAll(undos: { title: string; undo: () => Promise<void> }[], progress: Progress): Promise<void> {
  for (const { title, undo } of [...undos].reverse()) {
    progress.start(`Cleaning up: ${title}`);
    try {
      await undo();
      progress.end(true);
    } catch (error) {
      progress.end(false, error instanceof Error ? error.message.split('\n')[0] : String(error));
    }
  }
}

const DEFAULT_SETTLE_MS = 5_000;

/**
 * Runs one step under its timeout and the outer signal. On abort the step's signal fires and
 * the runner waits (bounded by `settleMs`) for the step's own promise to settle, so undo never
 * removes files or processes that the step is still using.
 */
async function runWithTimeout<C>(
  step: Step<C>,
  ctx: C,
  outer: AbortSignal | undefined,
  progress: Progress,
  onUndo: StepContext['onUndo'],
  settleMs: number,
): Promise<void> {
  if (outer?.aborted) throw new CancelledError();
  const controller = new AbortController();
  const abortFromOuter = () => controller.abort(new CancelledError());
  outer?.addEventListener('abort', abortFromOuter, { once: true });
  const timer = setTimeout(() => controller.abort(new TimeoutError(`${step.title} did not finish within ${Math.round(step.timeoutMs / 1000)}s`)), step.timeoutMs);
  const running = Promise.resolve().then(() => step.run(ctx, { signal: controller.signal, progress, onUndo }));
  const settled = running.then(() => undefined, () => undefined);
  const aborted = new Promise<void>((resolve) => controller.signal.addEventListener('abort', () => resolve(), { once: true }));
  try {
    await Promise.race([settled, aborted]);
    if (!controller.signal.aborted) return await running;
    // Aborted: give the step its bounded chance to stop before the caller undoes its work.
    let graceTimer: NodeJS.Timeout | undefined;
    const stoppedInTime = await Promise.race([settled.then(() => true), new Promise<boolean>((resolve) => (graceTimer = setTimeout(() => resolve(false), settleMs)))]);
    clearTimeout(graceTimer);
    if (!stoppedInTime) progress.warn(`${step.title} did not stop within ${Math.round(settleMs / 1000)}s of being aborted: cleaning up anyway`);
    throw controller.signal.reason;
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener('abort', abortFromOuter);
    if (!controller.signal.aborted) controller.abort(new CancelledError());
  }
}

function withStepHint<C>(step: Step<C>, error: unknown): LabError {
  return error instanceof CancelledError ? error : new StepFailedError(step.title, error, step.hint);
}
