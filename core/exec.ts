/**
 * The one seam for running host commands. Arguments are always an array (never a shell
 * string), output is captured, and a failure becomes a CommandError carrying the command
 * line, the exit code and the tail of stderr.
 */
import { execa, execaSync } from 'execa';
import { CommandError, tailLines } from './errors.ts';

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  input?: string | Buffer;
  /** Kill the command after this many milliseconds. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Shown with the error when the command fails. */
  hint?: string;
  /** Resolve instead of throwing on a non-zero exit. */
  allowFailure?: boolean;
  /** Append combined output to this file instead of keeping it in memory only. */
  logFile?: string;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  /** -1 when the command did not exit by itself (killed, timed out). */
  exitCode: number;
  timedOut: boolean;
  /** The signal that ended it, if any. */
  signal?: string;
  command: string;
}

export async function run(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const command = formatCommand(cmd, args);
  const result = await execa(cmd, args, {
    cwd: options.cwd,
    env: options.env,
    extendEnv: true,
    input: options.input,
    timeout: options.timeoutMs,
    cancelSignal: options.signal,
    reject: false,
    stripFinalNewline: true,
    ...(options.logFile ? { stdout: ['pipe', { file: options.logFile, append: true }], stderr: ['pipe', { file: options.logFile, append: true }] } : {}),
  });
  const stdout = String(result.stdout ?? '');
  const stderr = String(result.stderr ?? '');
  if (result.failed && !options.allowFailure) {
    const why = result.timedOut
      ? `timed out after ${options.timeoutMs} ms`
      : result.isCanceled
        ? 'cancelled'
        : result.exitCode === undefined
          ? result.originalMessage || result.shortMessage
          : '';
    const tail = tailLines([why, stderr || stdout].filter(Boolean).join('\n'));
    throw new CommandError(command, result.exitCode, tail, options.hint ?? missingCommandHint(result.originalMessage, cmd));
  }
  return { stdout, stderr, exitCode: result.exitCode ?? -1, timedOut: Boolean(result.timedOut), signal: result.signal, command };
}

/** True when `cmd` is on PATH (or is an existing absolute path). */
export async function commandExists(cmd: string): Promise<boolean> {
  const r = await execa('sh', ['-c', 'command -v "$1"', 'sh', cmd], { reject: false });
  return r.exitCode === 0;
}

/** Synchronous form, for decisions made while a module loads (test registration). */
export function commandExistsSync(cmd: string): boolean {
  return execaSync('sh', ['-c', 'command -v "$1"', 'sh', cmd], { reject: false }).exitCode === 0;
}

/** Quote a command line for display and for users to copy (POSIX shell quoting). */
export function formatCommand(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map(shellQuote).join(' ');
}

export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function missingCommandHint(message: string | undefined, cmd: string): string | undefined {
  return message?.includes('ENOENT') ? `\`${cmd}\` is not installed: run \`npm run doctor\` to see the apt-get line` : undefined;
}

export interface PipelineStage {
  cmd: string;
  args: readonly string[];
}

/**
 * Runs `a | b | c` with no shell: stdin from a file (or nothing), stdout of the last stage
 * into a file created with `stdoutMode`. Data flows between processes and files and is
 * never held here, so a volume of any size streams through (lab:backup, lab:restore).
 */
export async function runPipeline(stages: PipelineStage[], opts: { stdinFile?: string; stdoutFile?: string; stdoutMode?: number; signal?: AbortSignal; hint?: string } = {}): Promise<void> {
  const { spawn } = await import('node:child_process');
  const { openSync, closeSync } = await import('node:fs');
  const command = stages.map((s) => formatCommand(s.cmd, s.args)).join(' | ') + (opts.stdinFile ? ` < ${shellQuote(opts.stdinFile)}` : '') + (opts.stdoutFile ? ` > ${shellQuote(opts.stdoutFile)}` : '');
  const inFd = opts.stdinFile ? openSync(opts.stdinFile, 'r') : undefined;
  const outFd = opts.stdoutFile ? openSync(opts.stdoutFile, 'w', opts.stdoutMode ?? 0o600) : undefined;
  const children: import('node:child_process').ChildProcess[] = [];
  let stderr = '';
  try {
    let previous: NodeJS.ReadableStream | number | 'ignore' = inFd ?? 'ignore';
    for (const [i, stage] of stages.entries()) {
      const last = i === stages.length - 1;
      const child: import('node:child_process').ChildProcess = spawn(stage.cmd, [...stage.args], { stdio: [previous as never, last ? (outFd ?? 'ignore') : 'pipe', 'pipe'] });
      child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-16_384); });
      children.push(child);
      // The next process has its own copy of the pipe: ours would keep the previous one from closing.
      if (typeof previous === 'object') (previous as NodeJS.ReadableStream & { destroy(): void }).destroy();
      if (!last) previous = child.stdout!;
    }
    const onAbort = () => children.forEach((c) => c.kill('SIGTERM'));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const codes = await Promise.all(children.map((c) => new Promise<number | undefined>((done) => {
      c.once('error', (e) => { stderr += `\n${e.message}`; done(undefined); });
      c.once('close', (code) => done(code ?? undefined));
    })));
    opts.signal?.removeEventListener('abort', onAbort);
    const failed = codes.findIndex((c) => c !== 0);
    if (failed >= 0) throw new CommandError(command, codes[failed], tailLines(stderr), opts.hint ?? missingCommandHint(stderr.includes('ENOENT') ? 'ENOENT' : undefined, stages[failed]!.cmd));
  } finally {
    if (inFd !== undefined) closeSync(inFd);
    if (outFd !== undefined) closeSync(outFd);
  }
}
