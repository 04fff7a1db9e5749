/** SSH to a lab with its own key and pinned host key (no trust-on-first-use), or to another machine with its key and known_hosts. */
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256 } from '../core/hash.ts';
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

/**
 * Where sshRun's shared connection to a machine listens: a short path of its own (a Unix socket
 * path has ~100 bytes), outside the lab directory, named by the lab (or key) and its endpoint.
 */
export function renderControlPath(target: SshTarget, runtimeDir = SSH_CONTROL_DIR): string {
  const who = 'stateDir' in target ? target.stateDir : target.identityFile;
  return join(runtimeDir, sha256(`${who}\0${target.user}@${target.host}:${target.port}`).slice(0, 16));
}

export const SSH_CONTROL_DIR = join(tmpdir(), `labsmith-ssh-${process.getuid?.() ?? 0}`);

/**
 * One TCP connection, key exchange and login serves every command for a while: each new SSH
 * login costs seconds of the guest's emulated CPU (sshd's fork and exec, key exchange, PAM),
 * and lab:up and the checks run a dozen. The master exits 30 s after its last command, or when
 * the VM goes (its connection drops); keepalives end it within 15 s if the guest hangs.
 */
export function renderMultiplexArgs(controlPath: string): string[] {
  return ['-o', 'ControlMaster=auto', '-o', `ControlPath=${controlPath}`, '-o', 'ControlPersist=30', '-o', 'ServerAliveInterval=5', '-o', 'ServerAliveCountMax=3'];
}

/**
 * While a VM boots: connect through ssh-banner-proxy.mjs, which reopens the TCP connection until
 * sshd sends its banner (within budgetSeconds) and then relays that one connection. ssh's
 * ConnectTimeout also bounds its wait for the banner through a proxy, so it is longer.
 */
export function renderBannerProxyArgs(budgetSeconds: number, nodePath = process.execPath): string[] {
  const command = [nodePath, BANNER_PROXY_SCRIPT].map((w) => shellQuote(w).replaceAll('%', '%%')).join(' ');
  return ['-o', `ProxyCommand=${command} %h %p ${budgetSeconds}`, '-o', `ConnectTimeout=${budgetSeconds + 10}`];
}

export const BANNER_PROXY_SCRIPT = fileURLToPath(new URL('./ssh-banner-proxy.mjs', import.meta.url));

export interface SshArgsOptions {
  connectTimeoutSeconds?: number;
  batch?: boolean;
  multiplex?: string;
  serverAliveSeconds?: number;
  /** Wait through ssh-banner-proxy.mjs up to this long for sshd to answer (a booting VM). */
  bannerWaitSeconds?: number;
}

export function renderSshArgs(target: SshTarget, opts: SshArgsOptions = {}): string[] {
  const lab = 'stateDir' in target;
  const knownHosts = lab ? join(target.stateDir, LAB_FILES.knownHosts) : target.knownHostsFile;
  const alias = lab ? 'labsmith-lab' : target.hostKeyAlias;
  return [
    ...(opts.multiplex ? renderMultiplexArgs(opts.multiplex) : []),
    '-i', lab ? join(target.stateDir, LAB_FILES.sshKey) : target.identityFile,
    '-p', String(target.port),
    '-o', 'IdentitiesOnly=yes',
    ...(knownHosts ? ['-o', `UserKnownHostsFile=${knownHosts}`] : []),
    '-o', 'StrictHostKeyChecking=yes',
    ...(alias ? ['-o', `HostKeyAlias=${alias}`] : []),
    '-o', 'LogLevel=ERROR',
    ...(opts.bannerWaitSeconds ? renderBannerProxyArgs(opts.bannerWaitSeconds) : ['-o', `ConnectTimeout=${opts.connectTimeoutSeconds ?? 10}`]),
    ...(opts.batch === false ? [] : ['-o', 'BatchMode=yes']),
    ...(opts.serverAliveSeconds ? ['-o', `ServerAliveInterval=${opts.serverAliveSeconds}`] : []),
    `${target.user}@${target.host}`,
  ];
}

/** Runs a command in the guest. The remote command is passed as separate words, quoted for the remote shell. */
export async function sshRun(target: SshTarget, remote: string[], options: RunOptions & { connectTimeoutSeconds?: number } = {}): Promise<RunResult> {
  await mkdir(SSH_CONTROL_DIR, { recursive: true, mode: 0o700 });
  const { connectTimeoutSeconds, ...runOptions } = options;
  const multiplex = renderControlPath(target);
  return run('ssh', [...renderSshArgs(target, { connectTimeoutSeconds, multiplex }), '--', ...remote.map(shellQuote)], runOptions);
}

/** How long one boot probe's connection waits for sshd's banner, reopening while the guest is silent. */
export const BOOT_PROBE_BANNER_SECONDS = 20;

/**
 * `ssh true` while a machine boots, through the banner proxy; exit 0 once it answers. Once sshd
 * answers, the key exchange can take seconds of a busy guest's CPU, and nothing cuts it short.
 * With `shareConnection`, the login stays open as the master later sshRun calls use.
 */
export async function probeSshWhileBooting(target: SshTarget, opts: { signal?: AbortSignal; shareConnection?: boolean } = {}): Promise<RunResult> {
  if (opts.shareConnection) await mkdir(SSH_CONTROL_DIR, { recursive: true, mode: 0o700 });
  const args = renderSshArgs(target, { bannerWaitSeconds: BOOT_PROBE_BANNER_SECONDS, multiplex: opts.shareConnection ? renderControlPath(target) : undefined });
  return run('ssh', [...args, '--', 'true'], { allowFailure: true, signal: opts.signal, timeoutMs: (BOOT_PROBE_BANNER_SECONDS + 25) * 1000 });
}

/** The known_hosts line for the lab's pinned host key. */
export function renderKnownHosts(hostPublicKey: string): string {
  const [type, key] = hostPublicKey.trim().split(/\s+/);
  return `labsmith-lab ${type} ${key}\n`;
}
