/**
 * Where a build's apt fetches from when it is not the live mirror: an input archive
 * (`--artifacts DIR`, offline) or snapshot.debian.org (`debian.snapshot`). The image keeps
 * the lock's mirror URIs in its sources (they are in the layer inputs); apt is pointed at a
 * loopback HTTP proxy for the build only, through an apt.conf file a setup hook puts in the
 * chroot and the first customize hook removes, so the image is the same bytes as the online
 * build's. apt still checks everything as against the live mirror.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fetchBytes, UnreachableError } from '../../core/download.ts';
import { LabError } from '../../core/errors.ts';
import { sha256 } from '../../core/hash.ts';
import type { ImageLock } from '../lock/lock.ts';
import { parseReleaseDate, releaseDateField, type MirrorState } from '../mirror.ts';
import type { AptSource } from '../recipe.ts';
import { ARCHIVE_DIRS, lockId, mirrorDir, parseReleaseSha256, releaseEntry, snapshotUri, validUntil, VIEW_FILES, type ArchiveIndex } from './layout.ts';
import { isArchive, listViews, readIndex } from './store.ts';
import { ArchiveInputError, checkHash, DEBIAN_ARCHIVE_KEYRING, readPackagesIndex, verifyInRelease } from './verify.ts';

/** The apt.conf file that exists in the chroot only while mmdebstrap fetches. */
export const FETCH_CONF_NAME = '00labsmith-fetch';
export const SNAPSHOT_SERVICE = 'http://snapshot.debian.org';

export interface FetchRoute {
  kind: 'archive' | 'snapshot';
  /** For messages: `the archive /media/x (lock 1a2b…)`, `snapshot.debian.org at 20261201T000000Z`. */
  describe: string;
  mirrorState: MirrorState;
  /** Suites whose InRelease is past its Valid-Until: accepted for this build only. */
  expired: { suite: string; validUntil: string }[];
  /** The Kubernetes inputs' directory within the archive (`--artifacts` layout), when archived. */
  artifactsDir?: string;
  /** Starts the proxy; `close` stops it. `problems` lists what it refused (named file and lock entry). */
  start(): Promise<RunningRoute>;
}

export interface RunningRoute {
  url: string;
  /** The apt.conf text pointing apt at the proxy. */
  aptConf: string;
  problems: string[];
  requests: string[];
  close(): Promise<void>;
}

/** The apt options of a routed build (pure): the proxy, plain paths (no by-hash), and Valid-Until off only when an archived InRelease expired. */
export function renderFetchAptConf(proxyUrl: string, validUntilOff: boolean): string {
  return [
    `Acquire::http::Proxy "${proxyUrl}";`,
    'Acquire::By-Hash "no";',
    ...(validUntilOff ? ['Acquire::Check-Valid-Until "false";'] : []),
    '',
  ].join('\n');
}

/** mmdebstrap options that put the apt.conf in for the fetch and take it out before any layer hook runs (pure). */
export function renderFetchRouteArgs(confFile: string): string[] {
  return [`--setup-hook=copy-in ${confFile} /etc/apt/apt.conf.d`, `--customize-hook=rm -f "$1/etc/apt/apt.conf.d/${FETCH_CONF_NAME}"`];
}

/** Which source a proxied URL is for, and the path below it. */
function routeRequest(sources: AptSource[], url: string): { source: AptSource; rest: string } | undefined {
  for (const source of sources) {
    const base = source.uri.replace(/\/+$/, '') + '/';
    if (url.startsWith(base)) return { source, rest: url.slice(base.length) };
  }
  return undefined;
}

function mirrorStateOf(texts: Record<string, string>): MirrorState {
  const state: MirrorState = { releaseHashes: {}, dates: {}, newestDate: 0 };
  for (const [suite, text] of Object.entries(texts)) {
    state.releaseHashes[suite] = sha256(text);
    state.dates[suite] = releaseDateField(text) ?? '';
    state.newestDate = Math.max(state.newestDate, parseReleaseDate(text) ?? 0);
  }
  return state;
}

function expiredSuites(texts: Record<string, string>, now: Date): FetchRoute['expired'] {
  return Object.entries(texts).flatMap(([suite, text]) => {
    const until = validUntil(text);
    return until && until.getTime() < now.getTime() ? [{ suite, validUntil: until.toUTCString() }] : [];
  });
}

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void, validUntilOff: boolean, problems: string[], requests: string[]): Promise<RunningRoute> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return {
    url,
    aptConf: renderFetchAptConf(url, validUntilOff),
    problems,
    requests,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

export interface OpenArchiveOptions {
  dir: string;
  lock: ImageLock;
  sources: AptSource[];
  /** The keyring the InRelease must verify against (tests pass a fixture's). */
  keyring?: string;
  now?: Date;
}

/**
 * Opens the lock's view in an archive and verifies all of it before the build: the
 * InRelease is the locked one and signed by the keyring, each index matches InRelease,
 * each .deb its Packages stanza. Any failure names the file and the lock entry.
 */
export async function openArchiveRoute(opts: OpenArchiveOptions): Promise<FetchRoute> {
  const { dir, lock, sources } = opts;
  const keyring = opts.keyring ?? DEBIAN_ARCHIVE_KEYRING;
  const id = lockId(lock);
  const view = join(dir, ARCHIVE_DIRS.locks, id);
  if (!existsSync(join(view, VIEW_FILES.index))) {
    const held = await listViews(dir);
    throw new LabError(
      `the archive ${dir} has no inputs for this lock (lock id ${id}, taken ${newestLockDate(lock)}); it holds ${held.length ? held.map((v) => `${v.lockId} (${v.lockDate})`).join(', ') : 'no lock'}`,
      'pass the lock the archive was made from (--lock DIR/locks/<id>/image.lock.json), or archive this lock with `npm run image:archive -- --out DIR` where its mirror state is still served',
    );
  }
  const index = await readIndex(view);
  const byPath = new Map(index.files.map((f) => [f.path, f]));
  const texts: Record<string, string> = {};
  for (const source of sources) {
    const entry = releaseEntry(source.suite);
    const locked = lock.debian.releases[source.suite];
    const path = `${mirrorDir(source.uri)}/dists/${source.suite}/InRelease`;
    const file = join(view, path);
    if (!locked) throw new LabError(`the lock has no ${entry}`, 'run `npm run image:lock`');
    if (!existsSync(file)) throw new ArchiveInputError(file, entry, 'is missing from the archive');
    const bytes = await readFile(file);
    checkHash(bytes, locked.sha256, file, entry, 'the lock');
    const release = await verifyInRelease(bytes, keyring, file, entry);
    texts[source.suite] = bytes.toString('utf8');
    const listed = parseReleaseSha256(release);
    // Each archived index against InRelease; the Packages index then vouches for each .deb.
    const stanzas = new Map<string, string>();
    for (const f of index.files.filter((x) => x.entry === entry && x.what !== 'InRelease')) {
      const indexFile = join(view, f.path);
      if (!existsSync(indexFile)) throw new ArchiveInputError(indexFile, entry, 'is missing from the archive');
      const want = listed.get(f.what);
      if (!want) throw new ArchiveInputError(indexFile, entry, `${f.what} is not listed in the InRelease`);
      checkHash(await readFile(indexFile), want.sha256, indexFile, entry, 'InRelease');
      if (f.what.includes('/Packages')) for (const p of await readPackagesIndex(indexFile, f.what)) stanzas.set(`${mirrorDir(source.uri)}/${p.filename}`, p.sha256);
    }
    for (const f of index.files.filter((x) => x.entry.startsWith(`${entry}: `))) {
      const deb = join(view, f.path);
      if (!existsSync(deb)) throw new ArchiveInputError(deb, f.entry, 'is missing from the archive');
      const want = stanzas.get(f.path);
      if (!want) throw new ArchiveInputError(deb, f.entry, 'is not in the locked Packages index');
      checkHash(await readFile(deb), want, deb, f.entry, 'the Packages index');
    }
  }
  const expired = expiredSuites(texts, opts.now ?? new Date());
  return {
    kind: 'archive',
    describe: `the archive ${dir} (lock ${id})`,
    mirrorState: mirrorStateOf(texts),
    expired,
    artifactsDir: view,
    start: async () => {
      const problems: string[] = [];
      const requests: string[] = [];
      return listen((req, res) => void serveFromView(view, byPath, sources, req, res, problems, requests), expired.length > 0, problems, requests);
    },
  };
}

async function serveFromView(view: string, byPath: Map<string, ArchiveIndex['files'][number]>, sources: AptSource[], req: IncomingMessage, res: ServerResponse, problems: string[], requests: string[]): Promise<void> {
  const url = req.url ?? '';
  requests.push(url);
  const routed = routeRequest(sources, url);
  const path = routed && `${mirrorDir(routed.source.uri)}/${decodeURIComponent(routed.rest)}`;
  const entry = path && byPath.get(path);
  if (!entry) {
    // Files apt may try and do without (an uncompressed index, a translation) are simply absent.
    res.writeHead(404).end('not in the archive\n');
    return;
  }
  try {
    const bytes = await readFile(join(view, path));
    // Checked again as it is served: the view links blobs that could have been changed since.
    if (sha256(bytes) !== entry.sha256) {
      problems.push(`${join(view, path)} (lock entry ${entry.entry}): sha256 does not match the archive index`);
      res.writeHead(500).end('checksum mismatch\n');
      return;
    }
    res.writeHead(req.method === 'HEAD' ? 200 : 200, { 'content-length': bytes.length });
    res.end(req.method === 'HEAD' ? undefined : bytes);
  } catch (error) {
    problems.push(`${join(view, path)} (lock entry ${entry.entry}): ${(error as Error).message}`);
    res.writeHead(404).end('missing\n');
  }
}

function newestLockDate(lock: ImageLock): string {
  const dates = Object.values(lock.debian.releases).map((r) => r.date);
  return dates.sort((a, b) => Date.parse(b) - Date.parse(a))[0] ?? 'never';
}

export interface OpenSnapshotOptions {
  timestamp: string;
  lock: ImageLock;
  sources: AptSource[];
  /** snapshot.debian.org, or (tests) a loopback server with the same URL scheme. */
  service?: string;
  keyring?: string;
  now?: Date;
  signal?: AbortSignal;
}

/** The suites at a snapshot.debian.org moment: each InRelease must be the locked one (and signed); apt fetches the rest through the proxy. */
export async function openSnapshotRoute(opts: OpenSnapshotOptions): Promise<FetchRoute> {
  const service = opts.service ?? SNAPSHOT_SERVICE;
  const keyring = opts.keyring ?? DEBIAN_ARCHIVE_KEYRING;
  const texts: Record<string, string> = {};
  for (const source of opts.sources) {
    const entry = releaseEntry(source.suite);
    const url = `${snapshotUri(service, source, opts.timestamp)}/dists/${source.suite}/InRelease`;
    let bytes: Buffer;
    try {
      bytes = await fetchBytes(url, { signal: opts.signal });
    } catch (error) {
      if (!(error instanceof UnreachableError)) throw error;
      throw new LabError(`cannot read ${url}: ${error.reason}`, 'debian.snapshot needs snapshot.debian.org: without it, build from an archive with --artifacts DIR');
    }
    const locked = opts.lock.debian.releases[source.suite];
    if (!locked) throw new LabError(`the lock has no ${entry}`, 'run `npm run image:lock`');
    if (sha256(bytes) !== locked.sha256) {
      const text = bytes.toString('utf8');
      throw new ArchiveInputError(url, entry, `the snapshot at ${opts.timestamp} has the InRelease of ${releaseDateField(text) ?? '?'}, the lock names the one of ${locked.date}`, `pick the snapshot moment right after ${locked.date} (snapshot.debian.org/archive/${source.suite.endsWith('-security') ? 'debian-security' : 'debian'}/?year=… lists them) in debian.snapshot`);
    }
    await verifyInRelease(bytes, keyring, url, entry);
    texts[source.suite] = bytes.toString('utf8');
  }
  const expired = expiredSuites(texts, opts.now ?? new Date());
  return {
    kind: 'snapshot',
    describe: `${service} at ${opts.timestamp}`,
    mirrorState: mirrorStateOf(texts),
    expired,
    start: async () => {
      const problems: string[] = [];
      const requests: string[] = [];
      return listen((req, res) => void forward(service, opts.timestamp, opts.sources, req, res, problems, requests), expired.length > 0, problems, requests);
    },
  };
}

async function forward(service: string, timestamp: string, sources: AptSource[], req: IncomingMessage, res: ServerResponse, problems: string[], requests: string[]): Promise<void> {
  const url = req.url ?? '';
  requests.push(url);
  const routed = routeRequest(sources, url);
  if (!routed) {
    res.writeHead(404).end('not a locked source\n');
    return;
  }
  const target = `${snapshotUri(service, routed.source, timestamp)}/${routed.rest}`;
  try {
    const upstream = await fetch(target, { method: req.method === 'HEAD' ? 'HEAD' : 'GET', redirect: 'follow' });
    const headers: Record<string, string> = {};
    const length = upstream.headers.get('content-length');
    if (length) headers['content-length'] = length;
    res.writeHead(upstream.status, headers);
    if (!upstream.body || req.method === 'HEAD') res.end();
    else Readable.fromWeb(upstream.body as import('node:stream/web').ReadableStream).pipe(res);
  } catch (error) {
    problems.push(`${target}: ${(error as Error).message}`);
    res.writeHead(502).end('snapshot unreachable\n');
  }
}

/** Writes the apt.conf for a running route; returns the mmdebstrap options that use it. */
export async function fetchRouteArgs(running: RunningRoute, dir: string): Promise<string[]> {
  const conf = join(dir, FETCH_CONF_NAME);
  await writeFile(conf, running.aptConf);
  return renderFetchRouteArgs(conf);
}

export { isArchive };
