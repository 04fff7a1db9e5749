/**
 * Downloads with a pinned checksum. An unreachable URL is an UnreachableError naming it, so
 * callers can say what to do instead (a local artifacts directory).
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { LabError } from './errors.ts';
import { sha256File } from './hash.ts';

export class UnreachableError extends LabError {
  constructor(
    readonly url: string,
    readonly reason: string,
    hint?: string,
  ) {
    super(`cannot reach ${url}: ${reason}`, hint);
  }
}

export class ChecksumError extends LabError {
  constructor(
    readonly what: string,
    readonly expected: string,
    readonly actual: string,
    hint?: string,
  ) {
    super(`${what}: sha256 ${actual} does not match the locked ${expected}`, hint);
  }
}

function reasonOf(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } })?.cause;
  return cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error));
}

export interface FetchOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

function withTimeout(opts: FetchOptions): AbortSignal {
  const timeout = AbortSignal.timeout(opts.timeoutMs ?? 30_000);
  return opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
}

async function get(url: string, opts: FetchOptions): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(url, { signal: withTimeout(opts), redirect: 'follow' });
  } catch (error) {
    if (opts.signal?.aborted) throw error;
    throw new UnreachableError(url, reasonOf(error));
  }
  if (!response.ok) throw new UnreachableError(url, `HTTP ${response.status}`);
  return response;
}

export async function fetchBytes(url: string, opts: FetchOptions = {}): Promise<Buffer> {
  const response = await get(url, opts);
  return Buffer.from(await response.arrayBuffer());
}

/** Streams url to dest (atomically) and returns its sha256; with `sha256` a mismatch is a ChecksumError and nothing is kept. */
export async function downloadFile(url: string, dest: string, opts: FetchOptions & { sha256?: string } = {}): Promise<string> {
  const response = await get(url, { ...opts, timeoutMs: opts.timeoutMs ?? 30 * 60_000 });
  await mkdir(dirname(dest), { recursive: true });
  const tmp = `${dest}.part`;
  try {
    await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream), createWriteStream(tmp, { mode: 0o644 }));
    const actual = await sha256File(tmp);
    if (opts.sha256 && actual !== opts.sha256) throw new ChecksumError(url, opts.sha256, actual, 'the file changed upstream or was tampered with: check it, then run `npm run image:lock` if the change is expected');
    await rename(tmp, dest);
    return actual;
  } finally {
    await rm(tmp, { force: true });
  }
}
