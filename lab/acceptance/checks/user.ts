/**
 * The user's own checks (lab.yaml `checks:`), run after the built-in suite: http (Host/SNI,
 * TLS verified against the lab CA), tcp banners, smtp (EHLO, STARTTLS, a test message), dns
 * over UDP and TCP (a small wire-format encoder/decoder) and commands in the guest over SSH.
 * Each dials the lab's address on a host-side forward port, as a user's client would.
 */
import { createSocket } from 'node:dgram';
import { connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { checkServerIdentity, connect as tlsConnect, type PeerCertificate, type TLSSocket } from 'node:tls';
import { formatCommand } from '../../../core/exec.ts';
import { LAB_FILES } from '../../../core/paths.ts';
import type { CommandUserCheck, DnsQueryType, DnsUserCheck, HttpUserCheck, SmtpUserCheck, TcpUserCheck, UserCheck } from '../../../config/lab-config.ts';
import { sshRun } from '../../ssh.ts';
import type { Check, ProbeOutcome } from '../check.ts';
import type { AcceptanceContext } from '../context.ts';
import { httpGet, httpsGet } from '../probes.ts';
import { fail, needsSsh, remote } from './common.ts';

const RETRY_INTERVAL_MS = 2000;
const ok = (detail: string): ProbeOutcome => ({ ok: true, detail });
const caFile = (ctx: AcceptanceContext) => (ctx.stateDir ? join(ctx.stateDir, LAB_FILES.caCert) : 'LAB_CA.crt');
const firstLine = (text: string) => JSON.stringify(text.split(/\r?\n/)[0]!.slice(0, 200));

/** The suite's Check for one lab.yaml check. */
export function userCheck(c: UserCheck): Check<AcceptanceContext> {
  const frame = { id: `user/${c.name}`, timeoutMs: c.timeoutSeconds * 1000, retry: { attempts: c.retries + 1, intervalMs: RETRY_INTERVAL_MS } };
  switch (c.type) {
    case 'http':
      return { ...frame, ...httpCheck(c) };
    case 'tcp':
      return { ...frame, ...tcpCheck(c) };
    case 'smtp':
      return { ...frame, ...smtpCheck(c) };
    case 'dns':
      return { ...frame, ...dnsCheck(c) };
    case 'command':
      return { ...frame, ...commandCheck(c) };
  }
}

type CheckBody = Omit<Check<AcceptanceContext>, 'id' | 'timeoutMs' | 'retry'>;

// --- http ---

function httpCheck(c: HttpUserCheck): CheckBody {
  const url = new URL(c.url);
  const tls = url.protocol === 'https:';
  const port = url.port ? Number(url.port) : tls ? 443 : 80;
  const path = `${url.pathname}${url.search}`;
  return {
    description: `${c.url} answers ${c.status}${c.body ? ` with a body matching /${c.body}/` : ''}${tls ? ', certificate verified against the lab CA' : ''}`,
    hint: c.hint ?? `the service behind ${c.url} did not answer as expected: look at its pods and Ingress (kubectl get ingress -A), and at the reproduce command's output`,
    reproduce: (ctx) => formatCommand('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}\\n', '--resolve', `${url.hostname}:${port}:${ctx.address}`, ...(tls ? ['--cacert', caFile(ctx)] : []), c.url]),
    probe: async (ctx, signal) => {
      const req = { address: ctx.address, port, host: url.hostname, path, signal };
      const answer = tls ? await httpsGet({ ...req, ca: ctx.caCert }) : await httpGet(req);
      if (answer.status !== c.status) return fail(`status ${answer.status}, expected ${c.status}; body starts ${firstLine(answer.body)}`);
      if (c.body && !new RegExp(c.body).test(answer.body)) return fail(`status ${answer.status}, but the body does not match /${c.body}/; it starts ${firstLine(answer.body)}`);
      return ok(`status ${answer.status}${c.body ? `, body matches /${c.body}/` : ''}`);
    },
  };
}

// --- tcp ---

/** A plain TCP connection, destroyed when `signal` aborts. */
function dial(address: string, port: number, signal: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: address, port });
    const abort = () => socket.destroy(new Error('aborted'));
    signal.addEventListener('abort', abort, { once: true });
    socket.once('connect', () => resolve(socket));
    socket.once('error', (e) => reject(new Error(`cannot connect to ${address}:${port}: ${(e as NodeJS.ErrnoException).code ?? e.message}`)));
    socket.once('close', () => signal.removeEventListener('abort', abort));
  });
}

function tcpCheck(c: TcpUserCheck): CheckBody {
  return {
    description: `port ${c.port} accepts a connection${c.banner ? ` and greets with /${c.banner}/` : ''}`,
    hint: c.hint ?? `nothing answered as expected on forwarded port ${c.port}: is the service listening in the guest on the forward's guest port?`,
    reproduce: (ctx) => formatCommand('timeout', ['5', 'bash', '-c', `exec 3<>/dev/tcp/${ctx.address}/${c.port}; head -n1 <&3`]),
    probe: async (ctx, signal) => {
      const socket = await dial(ctx.address, c.port, signal);
      try {
        if (!c.banner) return ok(`connected to ${ctx.address}:${c.port}`);
        const reader = new LineReader(socket);
        const line = await reader.line();
        return new RegExp(c.banner).test(line) ? ok(`banner ${JSON.stringify(line)}`) : fail(`banner ${JSON.stringify(line)} does not match /${c.banner}/`);
      } finally {
        socket.destroy();
      }
    },
  };
}

/** Reads CRLF/LF-terminated lines from a socket that may be swapped (STARTTLS). */
class LineReader {
  private buffer = '';
  private waiting?: () => void;
  private ended?: Error;
  constructor(socket: Socket | TLSSocket) {
    this.attach(socket);
  }
  attach(socket: Socket | TLSSocket): void {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buffer += d;
      this.waiting?.();
    });
    socket.on('close', () => {
      this.ended ??= new Error(`the server closed the connection${this.buffer ? ` after ${JSON.stringify(this.buffer.slice(0, 200))}` : ''}`);
      this.waiting?.();
    });
    socket.on('error', (e) => {
      this.ended = e;
      this.waiting?.();
    });
  }
  /** Stops reading from the current socket (before a TLS upgrade takes it over). */
  detach(socket: Socket): void {
    socket.removeAllListeners('data');
    socket.removeAllListeners('close');
    socket.removeAllListeners('error');
    socket.on('error', () => undefined);
  }
  async line(): Promise<string> {
    for (;;) {
      const end = this.buffer.indexOf('\n');
      if (end >= 0) {
        const line = this.buffer.slice(0, end).replace(/\r$/, '');
        this.buffer = this.buffer.slice(end + 1);
        return line;
      }
      if (this.ended) throw this.ended;
      await new Promise<void>((resolve) => (this.waiting = resolve));
      this.waiting = undefined;
    }
  }
}

// --- smtp ---

interface SmtpReply {
  code: number;
  lines: string[];
}

async function readReply(reader: LineReader): Promise<SmtpReply> {
  const lines: string[] = [];
  for (;;) {
    const line = await reader.line();
    lines.push(line);
    const m = /^(\d{3})([ -]?)/.exec(line);
    if (!m) throw new Error(`not an SMTP reply: ${JSON.stringify(line)}`);
    if (m[2] !== '-') return { code: Number(m[1]), lines };
  }
}

const shownReply = (r: SmtpReply) => JSON.stringify(r.lines.join(' / ').slice(0, 300));

function smtpCheck(c: SmtpUserCheck): CheckBody {
  const steps = ['EHLO', ...(c.starttls ? ['STARTTLS verified against the lab CA'] : []), ...(c.sendTo ? [`a test message to ${c.sendTo}`] : [])];
  return {
    description: `SMTP on port ${c.port}: ${steps.join(', ')}`,
    hint: c.hint ?? `the mail server on forwarded port ${c.port} did not complete the dialogue: see the reproduce command, the MTA's log in the guest, and whether its certificate is issued by the lab CA for the name checked`,
    reproduce: (ctx) =>
      c.starttls
        ? formatCommand('openssl', ['s_client', '-brief', '-starttls', 'smtp', '-connect', `${ctx.address}:${c.port}`, '-servername', c.tlsName ?? ctx.ingressDomain, '-verify_hostname', c.tlsName ?? ctx.ingressDomain, '-CAfile', caFile(ctx), '-verify_return_error'])
        : formatCommand('timeout', ['5', 'bash', '-c', `exec 3<>/dev/tcp/${ctx.address}/${c.port}; head -n1 <&3; printf 'EHLO ${c.ehlo}\\r\\nQUIT\\r\\n' >&3; cat <&3`]),
    probe: (ctx, signal) => smtpDialogue(ctx, c, signal),
  };
}

async function smtpDialogue(ctx: AcceptanceContext, c: SmtpUserCheck, signal: AbortSignal): Promise<ProbeOutcome> {
  const plain = await dial(ctx.address, c.port, signal);
  let socket: Socket | TLSSocket = plain;
  const seen: string[] = [];
  try {
    const reader = new LineReader(plain);
    const send = async (command: string, expect: number, shown = command): Promise<SmtpReply | ProbeOutcome> => {
      socket.write(`${command}\r\n`);
      const reply = await readReply(reader);
      if (reply.code !== expect) return fail(`after ${[...seen, shown].join(', ')}: ${reply.code} ${shownReply(reply)}, expected ${expect}`);
      seen.push(shown);
      return reply;
    };
    const greeting = await readReply(reader);
    if (greeting.code !== 220) return fail(`greeting ${shownReply(greeting)}, expected 220`);
    let ehlo = await send(`EHLO ${c.ehlo}`, 250);
    if ('ok' in ehlo) return ehlo;
    let tlsNote = '';
    if (c.starttls) {
      if (!ehlo.lines.some((l) => /^250[ -]STARTTLS\b/i.test(l))) return fail(`EHLO did not offer STARTTLS: ${shownReply(ehlo)}`);
      const ready = await send('STARTTLS', 220);
      if ('ok' in ready) return ready;
      const name = c.tlsName ?? ctx.ingressDomain;
      reader.detach(plain);
      const secure = await upgrade(plain, name, ctx.caCert, signal);
      socket = secure;
      reader.attach(secure);
      tlsNote = `, TLS ${secure.getProtocol()} verified for ${name}`;
      ehlo = await send(`EHLO ${c.ehlo}`, 250);
      if ('ok' in ehlo) return ehlo;
    }
    let sent = '';
    if (c.sendTo) {
      for (const [command, expect] of [[`MAIL FROM:<${c.from}>`, 250], [`RCPT TO:<${c.sendTo}>`, 250], ['DATA', 354]] as const) {
        const r = await send(command, expect);
        if ('ok' in r) return r;
      }
      const message = [`From: <${c.from}>`, `To: <${c.sendTo}>`, `Subject: labsmith check ${c.name}`, `Message-ID: <labsmith-${Date.now()}@${c.ehlo}>`, '', `Sent by the labsmith check ${c.name}.`, '.'].join('\r\n');
      const queued = await send(message, 250, 'the message');
      if ('ok' in queued) return queued;
      sent = `, message to ${c.sendTo} accepted (${queued.lines.at(-1)!.slice(4, 120)})`;
    }
    socket.write('QUIT\r\n');
    return ok(`greeting ${firstLine(greeting.lines[0]!)}${tlsNote}${sent}`);
  } finally {
    socket.destroy();
    plain.destroy();
  }
}

function upgrade(socket: Socket, name: string, ca: string, signal: AbortSignal): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = tlsConnect({ socket, servername: name, ca, rejectUnauthorized: true, checkServerIdentity: (_h: string, cert: PeerCertificate) => checkServerIdentity(name, cert) });
    const abort = () => secure.destroy(new Error('aborted'));
    signal.addEventListener('abort', abort, { once: true });
    secure.once('secureConnect', () => resolve(secure));
    secure.once('error', (e) => reject(new Error(`STARTTLS: the certificate was not accepted for ${name}: ${(e as NodeJS.ErrnoException).code ?? ''} ${e.message}`.trim())));
    secure.once('close', () => signal.removeEventListener('abort', abort));
  });
}

// --- dns: wire format (RFC 1035; AAAA RFC 3596, SRV RFC 2782) ---

export const DNS_TYPE_CODES: Record<DnsQueryType, number> = { A: 1, NS: 2, CNAME: 5, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33 };
const DNS_TYPE_NAMES = Object.fromEntries(Object.entries(DNS_TYPE_CODES).map(([k, v]) => [v, k])) as Record<number, string>;
export const DNS_RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

/** A recursion-desired query for one name and type (pure). */
export function encodeDnsQuery(id: number, name: string, qtype: DnsQueryType): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2);
  header.writeUInt16BE(1, 4);
  const labels = name.replace(/\.$/, '').split('.').filter(Boolean).map((l) => Buffer.concat([Buffer.from([Buffer.byteLength(l)]), Buffer.from(l)]));
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(DNS_TYPE_CODES[qtype], 0);
  tail.writeUInt16BE(1, 2);
  return Buffer.concat([header, ...labels, Buffer.from([0]), tail]);
}

export interface DnsAnswer {
  id: number;
  rcode: string;
  truncated: boolean;
  /** Answer-section records as the probe prints them. */
  answers: { type: string; data: string }[];
}

/** Decodes a response's header and answer section, following name compression (pure). */
export function decodeDnsResponse(msg: Buffer): DnsAnswer {
  if (msg.length < 12) throw new Error(`a DNS answer of ${msg.length} bytes is too short`);
  const flags = msg.readUInt16BE(2);
  const qd = msg.readUInt16BE(4);
  const an = msg.readUInt16BE(6);
  let pos = 12;
  for (let i = 0; i < qd; i++) pos = readName(msg, pos).next + 4;
  const answers: DnsAnswer['answers'] = [];
  for (let i = 0; i < an; i++) {
    const name = readName(msg, pos);
    pos = name.next;
    const type = msg.readUInt16BE(pos);
    const length = msg.readUInt16BE(pos + 8);
    const start = pos + 10;
    pos = start + length;
    if (pos > msg.length) throw new Error('a DNS record runs past the end of the answer');
    answers.push({ type: DNS_TYPE_NAMES[type] ?? `TYPE${type}`, data: renderRdata(msg, type, start, length) });
  }
  return { id: msg.readUInt16BE(0), rcode: DNS_RCODES[flags & 0xf] ?? `RCODE${flags & 0xf}`, truncated: Boolean(flags & 0x0200), answers };
}

function readName(msg: Buffer, start: number): { name: string; next: number } {
  const labels: string[] = [];
  let pos = start;
  let next: number | undefined;
  for (let hops = 0; hops < 64; hops++) {
    const len = msg[pos];
    if (len === undefined) throw new Error('a DNS name runs past the end of the answer');
    if (len === 0) return { name: labels.join('.'), next: next ?? pos + 1 };
    if ((len & 0xc0) === 0xc0) {
      next ??= pos + 2;
      pos = msg.readUInt16BE(pos) & 0x3fff;
      continue;
    }
    labels.push(msg.subarray(pos + 1, pos + 1 + len).toString('latin1'));
    pos += len + 1;
  }
  throw new Error('a DNS name has a compression loop');
}

function renderRdata(msg: Buffer, type: number, start: number, length: number): string {
  switch (DNS_TYPE_NAMES[type]) {
    case 'A':
      return [...msg.subarray(start, start + 4)].join('.');
    case 'AAAA': {
      const groups = Array.from({ length: 8 }, (_, i) => msg.readUInt16BE(start + 2 * i).toString(16));
      return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
    }
    case 'NS':
    case 'CNAME':
    case 'PTR':
      return readName(msg, start).name;
    case 'MX':
      return `${msg.readUInt16BE(start)} ${readName(msg, start + 2).name}`;
    case 'SRV':
      return `${msg.readUInt16BE(start)} ${msg.readUInt16BE(start + 2)} ${msg.readUInt16BE(start + 4)} ${readName(msg, start + 6).name}`;
    case 'TXT': {
      const parts: string[] = [];
      for (let pos = start; pos < start + length; pos += msg[pos]! + 1) parts.push(msg.subarray(pos + 1, pos + 1 + msg[pos]!).toString('utf8'));
      return parts.join('');
    }
    default:
      return msg.subarray(start, start + length).toString('hex');
  }
}

/** One query over UDP or TCP to address:port. */
export async function queryDns(address: string, port: number, name: string, qtype: DnsQueryType, transport: 'udp' | 'tcp', signal: AbortSignal): Promise<DnsAnswer> {
  const id = Math.floor(Math.random() * 0x10000);
  const query = encodeDnsQuery(id, name, qtype);
  const raw = transport === 'udp' ? await udpExchange(address, port, query, signal) : await tcpExchange(address, port, query, signal);
  const answer = decodeDnsResponse(raw);
  if (answer.id !== id) throw new Error(`the answer's id ${answer.id} is not the query's ${id}`);
  return answer;
}

function udpExchange(address: string, port: number, query: Buffer, signal: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    const done = (fn: () => void) => {
      signal.removeEventListener('abort', abort);
      socket.close();
      fn();
    };
    const abort = () => done(() => reject(new Error(`no UDP answer from ${address}:${port}`)));
    signal.addEventListener('abort', abort, { once: true });
    socket.once('message', (msg) => done(() => resolve(msg)));
    // ICMP port unreachable arrives as ECONNREFUSED on a connected socket.
    socket.once('error', (e) => done(() => reject(new Error(`UDP ${address}:${port}: ${(e as NodeJS.ErrnoException).code ?? e.message}`))));
    socket.connect(port, address, () => socket.send(query));
  });
}

async function tcpExchange(address: string, port: number, query: Buffer, signal: AbortSignal): Promise<Buffer> {
  const socket = await dial(address, port, signal);
  return new Promise((resolve, reject) => {
    const length = Buffer.alloc(2);
    length.writeUInt16BE(query.length);
    let got = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) {
        socket.destroy();
        resolve(got.subarray(2, 2 + got.readUInt16BE(0)));
      }
    });
    socket.once('close', () => reject(new Error(`TCP ${address}:${port} closed after ${got.length} bytes`)));
    socket.once('error', reject);
    socket.write(Buffer.concat([length, query]));
  });
}

const normalised = (answers: string[]) => answers.map((a) => a.trim().replace(/\.$/, '').replace(/\.(\s|$)/g, '$1').toLowerCase()).sort();

/** What one transport's answer says against the expectation (pure). */
export function judgeDnsAnswer(c: Pick<DnsUserCheck, 'query' | 'qtype' | 'expect'>, answer: DnsAnswer): string | undefined {
  const got = normalised(answer.answers.filter((a) => a.type === c.qtype).map((a) => a.data));
  if (!c.expect.length) return answer.rcode === 'NXDOMAIN' ? undefined : `expected NXDOMAIN, got ${answer.rcode} [${got.join(', ')}]`;
  if (answer.rcode !== 'NOERROR') return `${answer.rcode} for ${c.query} ${c.qtype}, expected [${normalised(c.expect).join(', ')}]`;
  const want = normalised(c.expect);
  return JSON.stringify(got) === JSON.stringify(want) ? undefined : `${c.query} ${c.qtype} answered [${got.join(', ')}], expected [${want.join(', ')}]`;
}

function dnsCheck(c: DnsUserCheck): CheckBody {
  const want = c.expect.length ? c.expect.join(', ') : 'NXDOMAIN';
  return {
    description: `DNS ${c.query} ${c.qtype} on port ${c.port} over ${c.transports.join(' and ')} answers ${want}`,
    hint: c.hint ?? `the DNS server on forwarded port ${c.port} did not give the expected answer: check its zone, and that the forward carries ${c.transports.join(' and ')}`,
    reproduce: (ctx) => c.transports.map((t) => formatCommand('dig', [`@${ctx.address}`, '-p', String(c.port), ...(t === 'tcp' ? ['+tcp'] : ['+notcp']), c.query, c.qtype])).join(' && '),
    probe: async (ctx, signal) => {
      const seen: string[] = [];
      for (const transport of c.transports) {
        const answer = await queryDns(ctx.address, c.port, c.query, c.qtype, transport, signal).catch((e: Error) => e);
        if (answer instanceof Error) return fail(`${transport}: ${answer.message}`);
        const problem = judgeDnsAnswer(c, answer);
        if (problem) return fail(`${transport}: ${problem}`);
        seen.push(`${transport}: ${answer.rcode}${answer.answers.length ? ` [${answer.answers.filter((a) => a.type === c.qtype).map((a) => a.data).join(', ')}]` : ''}`);
      }
      return ok(seen.join('; '));
    },
  };
}

// --- command ---

function commandCheck(c: CommandUserCheck): CheckBody {
  return {
    description: `in the guest: ${JSON.stringify(c.run)} exits ${c.exitCode}${c.output ? ` printing /${c.output}/` : ''}`,
    hint: c.hint ?? 'the command did not give the expected result in the guest: run the reproduce command and read its output',
    reproduce: (ctx) => remote(ctx, 'sh', '-c', c.run),
    skip: (ctx) => needsSsh(ctx),
    probe: async (ctx, signal) => {
      const result = await sshRun(ctx.ssh!, ['sh', '-c', c.run], { allowFailure: true, signal });
      const tail = (s: string) => JSON.stringify(s.trim().split('\n').slice(-3).join(' | ').slice(0, 300));
      if (result.exitCode !== c.exitCode) return fail(`exit ${result.exitCode}, expected ${c.exitCode}; stdout ${tail(result.stdout)}, stderr ${tail(result.stderr)}`);
      if (c.output && !new RegExp(c.output, 'm').test(result.stdout)) return fail(`exit ${result.exitCode}, but stdout does not match /${c.output}/: ${tail(result.stdout)}`);
      return ok(`exit ${result.exitCode}${c.output ? `, stdout matches /${c.output}/` : ''}`);
    },
  };
}

export const userChecks = (checks: UserCheck[]): Check<AcceptanceContext>[] => checks.map(userCheck);
