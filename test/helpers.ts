/** Shared test helpers: temp dirs, host facts, and skips that say why. */
import test, { type ExecutionContext } from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commandExistsSync } from '../core/exec.ts';
import type { HostFacts } from '../config/validate.ts';
import { readHostFacts } from '../config/host-facts.ts';
import { parseLabConfig } from '../config/load.ts';
import type { LabConfig } from '../config/lab-config.ts';
import { throwawayLabYaml } from '../lab/ports.ts';

export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'labsmith-test-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A host with no routes of its own, running as root: the neutral background for config tests. */
export const NEUTRAL_HOST: HostFacts = { isRoot: true, unprivilegedPortStart: 1024, routes: [], addresses: [], kvmDevice: true };

/**
 * Registers the test, or a skipped test whose title carries the reason (printed once on
 * stderr too), when `reason` is set. A skip never hides a failure: the body does not run.
 */
export function testUnless(reason: string | undefined, title: string, body: (t: ExecutionContext) => Promise<void> | void, opts: { serial?: boolean } = {}): void {
  if (reason) {
    process.stderr.write(`skip: ${title}: ${reason}\n`);
    test.skip(`${title} (skipped: ${reason})`, () => undefined);
  } else if (opts.serial) {
    test.serial(title, body);
  } else {
    test(title, body);
  }
}

export function missingCommand(...commands: string[]): string | undefined {
  for (const c of commands) if (!commandExistsSync(c)) return `${c} is not installed (npm run doctor -- --install)`;
  return undefined;
}

export type TcpOutcome = 'connected' | 'refused' | 'timeout' | 'error';

/** One TCP connection attempt from the host: tells a listener, a refusal and a silent drop apart. */
export function tcpProbe(address: string, port: number, timeoutMs = 3000): Promise<TcpOutcome> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port });
    const done = (outcome: TcpOutcome) => {
      socket.destroy();
      resolve(outcome);
    };
    socket.setTimeout(timeoutMs, () => done('timeout'));
    socket.once('connect', () => done('connected'));
    socket.once('error', (e: NodeJS.ErrnoException) => done(e.code === 'ECONNREFUSED' ? 'refused' : e.code === 'ETIMEDOUT' ? 'timeout' : 'error'));
  });
}

export const notRoot = (): string | undefined => (process.getuid?.() === 0 ? undefined : 'needs root');

/**
 * A lab config on free host ports with its state under `dir`, parsed like lab.yaml against this
 * host's facts; a config problem throws, naming every field.
 */
export async function throwawayLabConfig(name: string, dir: string, extraYaml = ''): Promise<LabConfig> {
  const parsed = parseLabConfig(await throwawayLabYaml(name, join(dir, 'state'), extraYaml), await readHostFacts(), dir);
  if (!parsed.ok) throw new Error(`throwaway config ${name}: ${JSON.stringify(parsed.problems)}`);
  return parsed.config;
}
