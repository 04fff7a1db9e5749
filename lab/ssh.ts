/** SSH to a lab with its own key and pinned host key (no trust-on-first-use). */
import { join } from 'node:path';
import { run, shellQuote, type RunOptions, type RunResult } from '../core/exec.ts';
import { LAB_FILES } from '../core/paths.ts';

export interface SshTarget {
  stateDir: string;
  user: string;
  host: string;
  port: number;
}

export function renderSshArgs(target: SshTarget, opts: { connectTimeoutSeconds?: number; batch?: boolean } = {}): string[] {
  return [
    '-i', join(target.stateDir, LAB_FILES.sshKey),
    '-p', String(target.port),
    '-o', 'IdentitiesOnly=yes',
    '-o', `UserKnownHostsFile=${join(target.stateDir, LAB_FILES.knownHosts)}`,
    '-o', 'StrictHostKeyChecking=yes',
    '-o', `HostKeyAlias=labsmith-lab`,
    '-o', 'LogLevel=ERROR',
    '-o', `ConnectTimeout=${opts.connectTimeoutSeconds ?? 10}`,
    ...(opts.batch === false ? [] : ['-o', 'BatchMode=yes']),
    `${target.user}@${target.host}`,
  ];
}

/** Runs a command in the guest. The remote command is passed as separate words, quoted for the remote shell. */
export function sshRun(target: SshTarget, remote: string[], options: RunOptions & { connectTimeoutSeconds?: number } = {}): Promise<RunResult> {
  return run('ssh', [...renderSshArgs(target, { connectTimeoutSeconds: options.connectTimeoutSeconds }), '--', ...remote.map(shellQuote)], options);
}

/** The known_hosts line for the lab's pinned host key. */
export function renderKnownHosts(hostPublicKey: string): string {
  const [type, key] = hostPublicKey.trim().split(/\s+/);
  return `labsmith-lab ${type} ${key}\n`;
}
