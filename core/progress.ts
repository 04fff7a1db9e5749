/**
 * Kind-like progress: one line per step with ✓/✗ and its duration. A spinner only on an
 * interactive terminal; plain lines under CI or in a pipe; one JSON event per line with --json.
 */
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
  private current: { title: string; started: number } | undefined;

  constructor(
    readonly mode: ProgressMode,
    private readonly write: (text: string) => void = (t) => process.stderr.write(t),
    private readonly now: () => number = Date.now,
  ) {}

  start(title: string): void {
    this.current = { title, started: this.now() };
    if (this.mode === 'json') return this.emit({ event: 'step-start', title });
    if (this.mode === 'plain') return this.write(`• ${title} ...\n`);
    let frame = 0;
    this.write(`${SPINNER[0]} ${title}`);
    this.timer = setInterval(() => {
      frame = (frame + 1) % SPINNER.length;
      this.write(`\r${SPINNER[frame]} ${title}`);
    }, 100);
    this.timer.unref();
  }

  end(ok: boolean, detail?: string): number {
    const step = this.current;
    if (!step) return 0;
    this.current = undefined;
    if (this.timer) clearInterval(this.timer);
    const durationMs = this.now() - step.started;
    if (this.mode === 'json') {
      this.emit({ event: 'step-end', title: step.title, ok, durationMs, message: detail });
    } else {
      const mark = ok ? '✓' : '✗';
      const suffix = detail ? ` — ${detail}` : '';
      this.write(`${this.mode === 'tty' ? '\r\x1b[K' : ''}${mark} ${step.title} (${formatDuration(durationMs)})${suffix}\n`);
    }
    return durationMs;
  }

  info(message: string): void {
    if (this.mode === 'json') return this.emit({ event: 'info', message });
    this.interrupt(`  ${message}\n`);
  }

  warn(message: string): void {
    if (this.mode === 'json') return this.emit({ event: 'warn', message });
    this.interrupt(`! ${message}\n`);
  }

  private interrupt(text: string): void {
    // On a TTY the spinner line is redrawn after the message on the next tick.
    this.write(this.mode === 'tty' && this.current ? `\r\x1b[K${text}` : text);
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
