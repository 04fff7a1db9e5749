/**
 * What the suite runs on the host for the egress and log checks: a "public" HTTPS and HTTP
 * target on a documentation address (so no internet is needed), and a UDP syslog listener.
 * Both are torn down when the suite ends.
 */
import { createSocket, type Socket } from 'node:dgram';
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect } from 'node:net';
import { join } from 'node:path';
import { run } from '../../../core/exec.ts';
import { sleep } from '../../../core/sleep.ts';

/** TEST-NET-2 (RFC 5737): never routed on the internet, so the target is certainly ours. */
export const PUBLIC_TARGET_ADDRESS = '198.51.100.10';

export type TcpOutcome = 'connected' | 'refused' | 'timeout' | 'error';

/** One TCP connection attempt from the host. */
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

export interface PublicTarget {
  address: string;
  httpsPort: number;
  httpPort: number;
  close(): Promise<void>;
}

async function listen(server: Server, address: string, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => resolve());
  });
}

/**
 * Adds the documentation address to the host's loopback interface (the host accepts packets
 * for any of its addresses, whichever interface they arrive on) and serves HTTPS and HTTP there.
 */
export async function startPublicTarget(workDir: string, opts: { address?: string; httpsPort?: number; httpPort?: number } = {}): Promise<PublicTarget> {
  const address = opts.address ?? PUBLIC_TARGET_ADDRESS;
  const existing = await run('ip', ['-4', '-o', 'addr', 'show', 'dev', 'lo'], { allowFailure: true });
  const added = !existing.stdout.includes(` ${address}/`);
  if (added) await run('ip', ['addr', 'add', `${address}/32`, 'dev', 'lo']);
  const key = join(workDir, 'public-target.key');
  const cert = join(workDir, 'public-target.crt');
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=public-target.labsmith.invalid', '-keyout', key, '-out', cert]);
  const answer = (_req: unknown, res: import('node:http').ServerResponse) => res.end('labsmith public target\n');
  const https = createHttpsServer({ key: await readFile(key), cert: await readFile(cert) }, answer);
  const http = createHttpServer(answer);
  try {
    await listen(https, address, opts.httpsPort ?? 443);
    await listen(http, address, opts.httpPort ?? 80);
  } catch (error) {
    https.close();
    http.close();
    if (added) await run('ip', ['addr', 'del', `${address}/32`, 'dev', 'lo'], { allowFailure: true });
    throw error;
  }
  return {
    address,
    httpsPort: (https.address() as import('node:net').AddressInfo).port,
    httpPort: (http.address() as import('node:net').AddressInfo).port,
    async close() {
      await Promise.all([new Promise((r) => https.close(r)), new Promise((r) => http.close(r))]);
      if (added) await run('ip', ['addr', 'del', `${address}/32`, 'dev', 'lo'], { allowFailure: true });
    },
  };
}

export interface SyslogMessage {
  tag: string;
  message: string;
  raw: string;
}

/** `<pri>timestamp host tag: message` (RFC 3164 shape, as the node's rsyslog template writes it). */
export function parseSyslogMessage(raw: string): SyslogMessage | undefined {
  const m = /^<\d{1,3}>(?:\S+)\s+(?:\S+)\s+([^:\s]+):\s?(.*)$/s.exec(raw.trim());
  return m ? { tag: m[1]!, message: m[2]!, raw } : undefined;
}

export interface SyslogListener {
  port: number;
  messages: SyslogMessage[];
  waitFor(match: (m: SyslogMessage) => boolean, timeoutMs: number, signal?: AbortSignal): Promise<SyslogMessage | undefined>;
  close(): Promise<void>;
}

export async function startSyslogListener(address: string, port: number): Promise<SyslogListener> {
  const socket: Socket = createSocket('udp4');
  const messages: SyslogMessage[] = [];
  socket.on('message', (buf) => {
    const parsed = parseSyslogMessage(buf.toString('utf8'));
    if (parsed) messages.push(parsed);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, address, () => resolve());
  });
  return {
    port: socket.address().port,
    messages,
    async waitFor(match, timeoutMs, signal) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const found = messages.find(match);
        if (found) return found;
        await sleep(250, signal);
      }
      return undefined;
    },
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
}
