/**
 * The machine a backup is taken from or restored to, over SSH: a lab (its own key and pinned
 * host key) or the real server (`--host user@addr --ssh-key FILE`, the user's known_hosts).
 * Remote commands are argv words quoted for the remote shell, never a hand-built string.
 */
import { join } from 'node:path';
import { LabError } from '../../core/errors.ts';
import { run, runPipeline, shellQuote, type PipelineStage, type RunOptions, type RunResult } from '../../core/exec.ts';
import { LAB_FILES } from '../../core/paths.ts';
import { renderSshArgs, type KeyedSshTarget } from '../ssh.ts';

/** The same target lab:ssh and the checks use: key, known_hosts and host-key alias given. */
export type RemoteHost = KeyedSshTarget;

export function remoteForLab(stateDir: string, user: string, endpoint: { host: string; port: number }): RemoteHost {
  return { user, ...endpoint, identityFile: join(stateDir, LAB_FILES.sshKey), knownHostsFile: join(stateDir, LAB_FILES.knownHosts), hostKeyAlias: 'labsmith-lab' };
}

/** `--host admin@203.0.113.10[:22]` (pure). */
export function parseHostFlag(text: string, identityFile: string, knownHostsFile?: string): RemoteHost {
  const m = /^([a-z_][a-z0-9_-]*)@(\[[0-9a-f:]+\]|[^\s:@]+)(?::(\d{1,5}))?$/i.exec(text);
  if (!m) throw new LabError(`--host ${text} is not USER@ADDRESS[:PORT]`, 'for example --host admin@203.0.113.10', 2);
  return { user: m[1]!, host: m[2]!.replace(/^\[|\]$/g, ''), port: Number(m[3] ?? 22), identityFile, knownHostsFile };
}

/** Long streams (a volume's tar) keep the session alive through quiet stretches. */
export function renderRemoteSshArgs(r: RemoteHost): string[] {
  return renderSshArgs(r, { serverAliveSeconds: 15 });
}

export function sshStage(r: RemoteHost, remote: string[]): PipelineStage {
  return { cmd: 'ssh', args: [...renderRemoteSshArgs(r), '--', ...remote.map(shellQuote)] };
}

export function remoteRun(r: RemoteHost, remote: string[], opts: RunOptions = {}): Promise<RunResult> {
  const stage = sshStage(r, remote);
  return run(stage.cmd, stage.args, opts);
}

/** Remote stdout → [age to recipients] → a 0600 file. */
export function remoteToFile(r: RemoteHost, remote: string[], file: string, opts: { recipients?: string[]; signal?: AbortSignal; hint?: string } = {}): Promise<void> {
  const stages: PipelineStage[] = [sshStage(r, remote)];
  if (opts.recipients?.length) stages.push({ cmd: 'age', args: opts.recipients.flatMap((k) => ['-r', k]) });
  return runPipeline(stages, { stdoutFile: file, stdoutMode: 0o600, signal: opts.signal, hint: opts.hint });
}

/** A file → [age -d with identity] → remote stdin. */
export function fileToRemote(r: RemoteHost, file: string, remote: string[], opts: { identity?: string; signal?: AbortSignal; hint?: string } = {}): Promise<void> {
  const stages: PipelineStage[] = [];
  if (opts.identity) stages.push({ cmd: 'age', args: ['-d', '-i', opts.identity] });
  stages.push(sshStage(r, remote));
  return runPipeline(stages, { stdinFile: file, signal: opts.signal, hint: opts.hint });
}
