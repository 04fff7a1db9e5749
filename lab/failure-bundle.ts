/**
 * The logs of a failed lab:up, saved before its undo removes the lab directory: the serial
 * console, qemu's own messages, the steps with their timings and the error, and, when the guest
 * still answers SSH, its journal and cloud-init log. Owner-only: the journal can name secrets.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LabError } from '../core/errors.ts';
import { LAB_FILES } from '../core/paths.ts';
import { redact } from '../core/redact.ts';
import type { StepTiming } from '../core/steps.ts';
import { sshRun, type SshTarget } from './ssh.ts';

export const BUNDLE_FILES = {
  steps: 'steps.log',
  serial: 'serial.log',
  qemu: 'qemu.log',
  journal: 'journal.txt',
  cloudInit: 'cloud-init-output.log',
} as const;

export interface FailureBundleRequest {
  /** Parent of all bundles, e.g. <stateRoot>/failed. */
  root: string;
  labName: string;
  stateDir: string;
  consoleLog: string;
  failure: LabError;
  timings: StepTiming[];
  /** Set once the VM has an SSH endpoint. */
  ssh?: SshTarget;
  now?: Date;
}

/** The step log of a failed run (pure). */
export function renderStepLog(timings: StepTiming[], failure: LabError): string {
  const lines = timings.map((t) => `${t.ok ? 'ok  ' : 'FAIL'} ${t.title} (${(t.durationMs / 1000).toFixed(1)}s)`);
  lines.push('', failure.message);
  if (failure.hint) lines.push(`hint: ${failure.hint}`);
  return lines.join('\n') + '\n';
}

/** Writes the bundle and returns its directory. Each part is best effort: a missing log is named, not fatal. */
export async function saveFailureBundle(req: FailureBundleRequest): Promise<string> {
  const stamp = (req.now ?? new Date()).toISOString().replace(/[:.]/g, '-');
  await mkdir(req.root, { recursive: true, mode: 0o700 });
  const dir = join(req.root, `${req.labName}-${stamp}`);
  await mkdir(dir, { mode: 0o700 });
  const missing: string[] = [];
  // Every file is redacted: a workload's secret value can be in a console line or the journal.
  const write = (name: string, text: string) => writeFile(join(dir, name), redact(text), { mode: 0o600 });
  const copy = async (from: string, name: string) => {
    await readFile(from, 'utf8').then(
      (text) => write(name, text),
      () => missing.push(`${name} (no ${from})`),
    );
  };
  await copy(req.consoleLog, BUNDLE_FILES.serial);
  await copy(join(req.stateDir, LAB_FILES.qemuLog), BUNDLE_FILES.qemu);
  if (req.ssh) {
    // Bounded: a guest that stopped answering must not hold up the cleanup.
    for (const [name, remote] of [
      [BUNDLE_FILES.journal, ['sudo', 'journalctl', '-b', '--no-pager', '-o', 'short-precise']],
      [BUNDLE_FILES.cloudInit, ['sudo', 'cat', '/var/log/cloud-init-output.log']],
    ] as const) {
      const r = await sshRun(req.ssh, [...remote], { allowFailure: true, connectTimeoutSeconds: 5, timeoutMs: 30_000 });
      if (r.exitCode === 0) await write(name, r.stdout);
      else missing.push(`${name} (ssh: ${r.stderr.trim().split('\n').pop() || `exit ${r.exitCode}`})`);
    }
  } else {
    missing.push(`${BUNDLE_FILES.journal} (the VM never had an SSH endpoint)`);
  }
  await write(BUNDLE_FILES.steps, renderStepLog(req.timings, req.failure) + (missing.length ? `\nnot saved: ${missing.join('; ')}\n` : ''));
  return dir;
}
