/**
 * What the suite runs on the host for the egress and log checks: a "public" HTTPS and HTTP
 * target on a documentation address (so no internet is needed), and a UDP syslog listener.
 * Both are torn down when the suite ends.
 */
import { createSocket, type Socket } from 'node:dgram';
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { join } from 'node:path';
import { run } from '../../../core/exec.ts';
import { sleep } from '../../../core/sleep.ts';

/** TEST-NET-2 (RFC 5737): never routed on the internet, so the target is certainly ours. */
const PUBLIC_TARGET_ADDRESS = '198.51.100.10';

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
 * A failure (or an abort) after the address was added takes it away again.
 */
export async function startPublicTarget(workDir: string, opts: { address?: string; httpsPort?: number; httpPort?: number; signal?: AbortSignal } = {}): Promise<PublicTarget> {
  const address = opts.address ?? PUBLIC_TARGET_ADDRESS;
  const { signal } = opts;
  const existing = await run('ip', ['-4', '-o', 'addr', 'show', 'dev', 'lo'], { allowFailure: true, signal });
  const added = !existing.stdout.includes(` ${address}/`);
  const servers: Server[] = [];
  const undo = async () => {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    if (added) await run('ip', ['addr', 'del', `${address}/32`, 'dev', 'lo'], { allowFailure: true });
  };
  if (added) await run('ip', ['addr', 'add', `${address}/32`, 'dev', 'lo'], { signal });
  try {
    const key = join(workDir, 'public-target.key');
    const cert = join(workDir, 'public-target.crt');
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=public-target.labsmith.invalid', '-keyout', key, '-out', cert], { signal });
    const answer = (_req: unknown, res: import('node:http').ServerResponse) => res.end('labsmith public target\n');
    const https = createHttpsServer({ key: await readFile(key), cert: await readFile(cert) }, answer);
    const http = createHttpServer(answer);
    await listen(https, address, opts.httpsPort ?? 443);
    servers.push(https);
    await listen(http, address, opts.httpPort ?? 80);
    servers.push(http);
    if (signal?.aborted) throw signal.reason;
    return {
      address,
      httpsPort: (https.address() as import('node:net').AddressInfo).port,
      httpPort: (http.address() as import('node:net').AddressInfo).port,
      close: undo,
    };
  } catch (error) {
    await undo();
    throw error;
  }
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
