/**
 * Debian packages the upgrade installs that the image's suite does not carry (forky's containerd
 * 2 on a trixie node), fetched on the host and pinned: apt works in a private root (its own
 * sources, lists and cache, so the host's apt state is untouched) and checks the index signature
 * with Debian's keyring and each .deb against the signed index; then each file's sha256 must equal
 * the lock's. Fetched files are cached by sha256.
 */
import { existsSync, readdirSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LabError } from '../../core/errors.ts';
import { run } from '../../core/exec.ts';
import { sha256File } from '../../core/hash.ts';
import { cacheRoot } from '../../core/paths.ts';

/** One package as the lock pins it. */
export interface PinnedDeb {
  package: string;
  version: string;
  sha256: string;
  /** The Debian suite it comes from, e.g. forky. */
  suite: string;
}

export const DEBIAN_MIRROR = 'http://deb.debian.org/debian';
export const DEBIAN_ARCHIVE_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

export function renderPrivateSources(suite: string, mirror = DEBIAN_MIRROR): string {
  return `Types: deb\nURIs: ${mirror}\nSuites: ${suite}\nComponents: main\nSigned-By: ${DEBIAN_ARCHIVE_KEYRING}\n`;
}

/** apt's options for a private root under `dir` (pure). */
export function privateAptOptions(dir: string): string[] {
  return [
    '-o', `Dir::Etc::SourceList=${join(dir, 'empty.list')}`, '-o', `Dir::Etc::SourceParts=${join(dir, 'sources.list.d')}`,
    '-o', `Dir::Etc::Preferences=${join(dir, 'empty.pref')}`, '-o', `Dir::Etc::PreferencesParts=${join(dir, 'preferences.d')}`,
    '-o', `Dir::State::Lists=${join(dir, 'lists')}`, '-o', `Dir::Cache=${join(dir, 'cache')}`,
    '-o', 'Dir::State::status=/dev/null', '-o', 'APT::Sandbox::User=root', '-o', 'APT::Architecture=amd64',
  ];
}

/** A private apt root for one suite, its signed index fetched; the caller removes `dir`. */
export async function preparePrivateApt(dir: string, suite: string, opts: { mirror?: string; signal?: AbortSignal } = {}): Promise<string[]> {
  for (const d of ['lists/partial', 'cache/archives/partial', 'sources.list.d', 'preferences.d']) await mkdir(join(dir, d), { recursive: true });
  await writeFile(join(dir, 'sources.list.d', `${suite}.sources`), renderPrivateSources(suite, opts.mirror));
  await writeFile(join(dir, 'empty.list'), '');
  await writeFile(join(dir, 'empty.pref'), '');
  const apt = privateAptOptions(dir);
  await run('apt-get', [...apt, 'update', '-q'], { timeoutMs: 300_000, signal: opts.signal, hint: `Debian's ${suite} suite on ${opts.mirror ?? DEBIAN_MIRROR} must be reachable (its InRelease is checked with ${DEBIAN_ARCHIVE_KEYRING})` });
  return apt;
}

/** The candidate of `package` in the suite's signed index: what a lock refresh pins (version and sha256). */
export async function readIndexedDeb(suite: string, pkg: string, opts: { mirror?: string; signal?: AbortSignal } = {}): Promise<PinnedDeb> {
  await mkdir(debCacheDir(), { recursive: true });
  const dir = await mkdtemp(join(debCacheDir(), 'index-'));
  try {
    const apt = await preparePrivateApt(dir, suite, opts);
    const version = (await run('apt-cache', [...apt, 'policy', pkg])).stdout.match(/Candidate:\s+(\S+)/)?.[1];
    if (!version || version === '(none)') throw new LabError(`${pkg} is not in Debian ${suite}`, `check the package name; apt-cache policy ${pkg} with ${suite} in the sources`);
    const fields = parseDebControl((await run('apt-cache', [...apt, 'show', `${pkg}=${version}`])).stdout.split('\n\n')[0] ?? '');
    if (!/^[0-9a-f]{64}$/.test(fields.SHA256 ?? '')) throw new LabError(`the ${suite} index lists no sha256 for ${pkg} ${version}`, 'the index may be damaged: run again');
    return { package: pkg, version, sha256: fields.SHA256!, suite };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `Key: value` lines of one control stanza (pure; continuation lines are dropped). */
export function parseDebControl(stanza: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of stanza.split('\n')) {
    const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

export function debCacheDir(): string {
  return join(cacheRoot(), 'debs');
}

/**
 * Each pinned .deb as a file under `outDir`, from the cache or downloaded through the signed
 * index; a file whose sha256 is not the pin's is refused (and never cached).
 */
export async function fetchPinnedDebs(opts: { pins: PinnedDeb[]; outDir: string; mirror?: string; signal?: AbortSignal }): Promise<string[]> {
  await mkdir(opts.outDir, { recursive: true });
  const files: string[] = [];
  const missing = opts.pins.filter((p) => !cachedDeb(p));
  for (const suite of new Set(missing.map((p) => p.suite))) {
    await mkdir(debCacheDir(), { recursive: true });
    const work = await mkdtemp(join(debCacheDir(), 'fetch-'));
    try {
      const apt = await preparePrivateApt(work, suite, opts);
      for (const pin of missing.filter((p) => p.suite === suite)) {
        const dl = join(work, 'download', pin.sha256);
        await mkdir(dl, { recursive: true });
        await run('apt-get', [...apt, 'download', `${pin.package}=${pin.version}`], {
          cwd: dl, timeoutMs: 600_000, signal: opts.signal,
          hint: `the lock pins ${pin.package} ${pin.version} from ${suite}; if the mirror dropped it, refresh the lock`,
        });
        const name = (await readdir(dl)).find((f) => f.endsWith('.deb'));
        if (!name) throw new LabError(`apt-get download ${pin.package}=${pin.version} left no .deb`, 'run again; apt prints why above');
        const actual = await sha256File(join(dl, name));
        if (actual !== pin.sha256) {
          throw new LabError(`${name} from Debian ${suite} has sha256 ${actual}, the lock pins ${pin.sha256}`, `the mirror's ${pin.package} ${pin.version} is not the locked file: refresh the lock (and read why it changed) before upgrading`);
        }
        const dest = join(debCacheDir(), pin.sha256);
        await mkdir(dest, { recursive: true });
        await rename(join(dl, name), join(dest, name));
      }
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }
  for (const pin of opts.pins) {
    const cached = cachedDeb(pin);
    if (!cached) throw new Error(`internal: ${pin.package} ${pin.version} not cached after the fetch`);
    // The cache is checked again: a file changed on disk is never installed.
    if ((await sha256File(cached)) !== pin.sha256) throw new LabError(`${cached} no longer matches its sha256 ${pin.sha256}`, `remove ${join(debCacheDir(), pin.sha256)} and run again`);
    const out = join(opts.outDir, cached.slice(cached.lastIndexOf('/') + 1));
    await copyFile(cached, out);
    files.push(out);
  }
  return files;
}

function cachedDeb(pin: PinnedDeb): string | undefined {
  const dir = join(debCacheDir(), pin.sha256);
  if (!existsSync(dir)) return undefined;
  const name = readdirSync(dir).find((f) => f.endsWith('.deb'));
  return name ? join(dir, name) : undefined;
}
