/**
 * The one place that turns errors into messages and exit codes. Every script calls
 * `runMain`, which parses flags, wires Ctrl-C to an AbortSignal and prints failures with
 * their hint (stack traces only with --verbose).
 */
import { minimist } from 'zx';
import { LabError } from './errors.ts';
import { redact } from './redact.ts';
import { chooseProgressMode, Progress } from './progress.ts';

/** After Ctrl-C or SIGTERM, how long cleanup may run before the process exits regardless. */
export const EXIT_GRACE_MS = 20_000;

export interface MainContext {
  args: minimist.ParsedArgs;
  progress: Progress;
  signal: AbortSignal;
  verbose: boolean;
}

export interface FlagSpec {
  string?: string[];
  boolean?: string[];
  default?: Record<string, unknown>;
  /** Stop at the first positional argument (the rest is a command to pass on). */
  stopEarly?: boolean;
  /** One line per flag for --help. */
  usage: string;
}

export function runMain(spec: FlagSpec, body: (ctx: MainContext) => Promise<number | void>): void {
  const args = minimist(process.argv.slice(2), {
    string: spec.string,
    boolean: ['verbose', 'json', 'help', ...(spec.boolean ?? [])],
    default: spec.default,
    stopEarly: spec.stopEarly,
  });
  if (args.help) {
    process.stdout.write(spec.usage.trim() + '\n');
    return;
  }
  const known = new Set(['_', 'verbose', 'json', 'help', ...(spec.string ?? []), ...(spec.boolean ?? [])]);
  const unknown = Object.keys(args).filter((k) => !known.has(k));
  const verbose = Boolean(args.verbose);
  const progress = new Progress(chooseProgressMode({ json: args.json, isTTY: process.stderr.isTTY, ci: Boolean(process.env.CI) }));
  if (unknown.length) {
    reportError(new LabError(`unknown option ${unknown.map((k) => `--${k}`).join(', ')}`, `see --help:\n${spec.usage.trim()}`, 2), verbose);
    process.exitCode = 2;
    return;
  }
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (name: NodeJS.Signals, code: number) => {
    signals += 1;
    if (signals > 1) process.exit(code);
    progress.warn(`${name === 'SIGINT' ? 'interrupted' : 'terminated'}: cleaning up (press Ctrl-C again to stop at once)`);
    controller.abort();
    // Whatever the work waits on (a hung file system, a process that will not die), the
    // command ends: cleanup gets a bounded time, then the process exits anyway.
    setTimeout(() => {
      process.stderr.write(`✗ cleanup did not finish within ${EXIT_GRACE_MS / 1000}s of ${name}: exiting; files of the run may be left (npm run lab:down removes a lab)\n`);
      process.exit(code);
    }, EXIT_GRACE_MS).unref();
  };
  process.on('SIGINT', () => onSignal('SIGINT', 130));
  process.on('SIGTERM', () => onSignal('SIGTERM', 143));
  body({ args, progress, signal: controller.signal, verbose }).then(
    (code) => {
      process.exitCode = code ?? 0;
    },
    (error: unknown) => {
      reportError(error, verbose);
      process.exitCode = error instanceof LabError ? error.exitCode : 1;
    },
  );
}

export function reportError(error: unknown, verbose: boolean): void {
  const message = error instanceof Error ? error.message : String(error);
  let text = `✗ ${message}\n`;
  if (error instanceof LabError && error.hint) text += `  hint: ${error.hint}\n`;
  if (verbose && error instanceof Error && error.stack) text += `${error.stack}\n`;
  else if (!(error instanceof LabError)) text += '  (unexpected error: rerun with --verbose for the stack trace)\n';
  process.stderr.write(redact(text));
}
