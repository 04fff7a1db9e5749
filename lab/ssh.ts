/** SSH to a lab with its own key and pinned host key (no trust-on-first-use), or to another machine with its key and known_hosts. */
import { join } from 'node:path';
import { run, shellQuote, type RunOptions, type RunResult } from '../core/exec.ts';
import { LAB_FILES } from '../core/paths.ts';

/** A lab: its key and pinned host key are in its state directory. */
export interface LabSshTarget {
  stateDir: string;
  user: string;
  host: string;
  port: number;
}

/** Another machine built from the image (a restore target, the server): its own key and known_hosts. */
export interface KeyedSshTarget {
  user: string;
  host: string;
  port: number;
  identityFile: string;
  /** Default: the user's own known_hosts. */
  knownHostsFile?: string;
  hostKeyAlias?: string;
}

export type SshTarget = LabSshTarget | KeyedSshTarget;

export function renderSshArgs(target: SshTarget, opts: { connectTimeoutSeconds?: number; batch?: boolean } = {}): string[] {
  const lab = 'stateDir' in target;
  const knownHosts = lab ? join(target.stateDir, LAB_FILES.knownHosts) : target.knownHostsFile;
  const alias = lab ? 'labsmith-lab' : target.hostKeyAlias;
  return [
    '-i', lab ? join(target.stateDir, LAB_FILES.sshKey) : target.identityFile,
    '-p', String(target.port),
    '-o', 'IdentitiesOnly=yes',
    ...(knownHosts ? ['-o', `UserKnownHostsFile=${knownHosts}`] : []),
    '-o', 'StrictHostKeyChecking=yes',
    ...(alias ? ['-o', `HostKeyAlias=${alias}`] : []),
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
