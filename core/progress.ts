/**
 * Kind-like progress: one line per step with ✓/✗ and its duration. A spinner only on an
 * interactive terminal; plain lines under CI or in a pipe; one JSON event per line with --json.
 */
import { redact } from './redact.ts';

export type ProgressMode = 'tty' | 'plain' | 'json';

export interface ProgressEvent {
  event: 'step-start' | 'step-end' | 'info' | 'warn';
  title?: string;
  ok?: boolean;
  durationMs?: number;
  message?: string;
  time: string;
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export function chooseProgressMode(opts: { json?: boolean; isTTY?: boolean; ci?: boolean }): ProgressMode {
  if (opts.json) return 'json';
  return opts.isTTY && !opts.ci ? 'tty' : 'plain';
}

export class Progress {
  private timer: NodeJS.Timeout | undefined;
  /** Steps may nest (lab:up's image step runs the image build's steps): innermost last. */
  private readonly stack: { title: string; started: number }[] = [];

  constructor(
    readonly mode: ProgressMode,
    private readonly sink: (text: string) => void = (t) => process.stderr.write(t),
    private readonly now: () => number = Date.now,
  ) {}

  /** Every line passes here: secret values of the workloads never reach the screen (core/redact.ts). */
  private write(text: string): void {
    this.sink(redact(text));
  }

  start(title: string): void {
    this.stopSpinner();
    const indent = this.indent();
    this.stack.push({ title, started: this.now() });
    if (this.mode === 'json') return this.emit({ event: 'step-start', title });
    if (this.mode === 'plain') return this.write(`${indent}• ${title} ...\n`);
    this.startSpinner();
  }

  end(ok: boolean, detail?: string): number {
    const step = this.stack.pop();
    if (!step) return 0;
    this.stopSpinner();
    const durationMs = this.now() - step.started;
    if (this.mode === 'json') {
      this.emit({ event: 'step-end', title: step.title, ok, durationMs, message: detail });
    } else {
      const mark = ok ? '✓' : '✗';
      const suffix = detail ? ` — ${detail}` : '';
      this.write(`${this.mode === 'tty' ? '\r\x1b[K' : ''}${this.indent()}${mark} ${step.title} (${formatDuration(durationMs)})${suffix}\n`);
      if (this.mode === 'tty' && this.stack.length) this.startSpinner();
    }
    return durationMs;
  }

  info(message: string): void {
    if (this.mode === 'json') return this.emit({ event: 'info', message });
    this.interrupt(`${this.indent()}  ${message}\n`);
  }

  warn(message: string): void {
    if (this.mode === 'json') return this.emit({ event: 'warn', message });
    this.interrupt(`${this.indent()}! ${message}\n`);
  }

  private indent(): string {
    return '  '.repeat(this.stack.length);
  }

  private startSpinner(): void {
    const top = this.stack.at(-1);
    if (!top) return;
    const prefix = '  '.repeat(this.stack.length - 1);
    let frame = 0;
    this.write(`${prefix}${SPINNER[0]} ${top.title}`);
    this.timer = setInterval(() => {
      frame = (frame + 1) % SPINNER.length;
      this.write(`\r${prefix}${SPINNER[frame]} ${top.title}`);
    }, 100);
    this.timer.unref();
  }

  private stopSpinner(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.mode === 'tty' && this.stack.length) this.write('\r\x1b[K');
  }

  private interrupt(text: string): void {
    // On a TTY the spinner line is cleared, the message written, and the spinner redrawn.
    if (this.mode !== 'tty' || !this.stack.length) return this.write(text);
    this.stopSpinner();
    this.write(text);
    this.startSpinner();
  }

  private emit(e: Omit<ProgressEvent, 'time'>): void {
    this.write(JSON.stringify({ ...e, time: new Date(this.now()).toISOString() }) + '\n');
  }
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const m = Math.floor(ms / 60_000);
  return `${m}m${Math.round((ms % 60_000) / 1000)}s`;
}
