/**
 * Debian packages fetched with apt itself into a private apt root (its own sources, lists and
 * cache; Debian's signed index, checked by apt against debian-archive-keyring) and unpacked into
 * the cache: host tools newer than the host's Debian ships, with nothing installed on the host.
 * Used for trixie's etcd 3.5 (lab/backup/etcd-tools.ts) and forky's kustomize (lab/workloads/kustomize.ts).
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './exec.ts';

export const DEFAULT_DEBIAN_MIRROR = 'http://deb.debian.org/debian';

/** The private apt configuration (pure): its own sources, lists and cache; the host's status is not read. */
export function renderPrivateAptOptions(root: string): string[] {
  return [
    '-o', `Dir::Etc::SourceList=${join(root, 'sources.list')}`,
    '-o', 'Dir::Etc::SourceParts=/dev/null',
    '-o', `Dir::State::Lists=${join(root, 'lists')}`,
    '-o', `Dir::Cache=${join(root, 'cache')}`,
    '-o', 'Dir::State::status=/dev/null',
    '-o', 'APT::Architecture=amd64',
    '-o', 'Acquire::Languages=none',
    '-o', 'APT::Sandbox::User=root',
  ];
}

export interface UnpackedPackages {
  /** The unpacked root: binaries are under root/usr/bin. */
  root: string;
  /** The .deb file names apt downloaded (name_version_arch.deb): which versions these are. */
  debs: string[];
}

/**
 * Unpacks `packages` of Debian `suite` into `dir`/root once (a `.complete` marker), reusing it
 * after. Concurrent callers race safely: the loser keeps the winner's copy.
 */
export async function ensureDebianPackagesUnpacked(dir: string, opts: { suite: string; packages: readonly string[]; mirror?: string; hint: string; signal?: AbortSignal }): Promise<UnpackedPackages> {
  if (!existsSync(join(dir, '.complete'))) await fetchDebianPackages(dir, opts);
  const debs = (await readFile(join(dir, '.complete'), 'utf8')).split('\n').slice(1).filter(Boolean);
  return { root: join(dir, 'root'), debs };
}

async function fetchDebianPackages(dir: string, opts: { suite: string; packages: readonly string[]; mirror?: string; hint: string; signal?: AbortSignal }): Promise<void> {
  const { signal, hint } = opts;
  const work = `${dir}.tmp-${process.pid}`;
  await rm(work, { recursive: true, force: true });
  await mkdir(join(work, 'lists', 'partial'), { recursive: true });
  await mkdir(join(work, 'cache', 'archives', 'partial'), { recursive: true });
  await mkdir(join(work, 'debs'), { recursive: true });
  await writeFile(join(work, 'sources.list'), `deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${opts.mirror ?? DEFAULT_DEBIAN_MIRROR} ${opts.suite} main\n`);
  const apt = renderPrivateAptOptions(work);
  try {
    await run('apt-get', [...apt, 'update'], { signal, timeoutMs: 5 * 60_000, hint });
    await run('apt-get', [...apt, 'download', ...opts.packages], { cwd: join(work, 'debs'), signal, timeoutMs: 5 * 60_000, hint });
    const debs = (await readdir(join(work, 'debs'))).sort();
    for (const deb of debs) await run('dpkg-deb', ['-x', join(work, 'debs', deb), join(work, 'root')]);
    await rm(join(work, 'lists'), { recursive: true, force: true });
    await rm(join(work, 'cache'), { recursive: true, force: true });
    await rm(join(work, 'debs'), { recursive: true, force: true });
    await writeFile(join(work, '.complete'), `${new Date().toISOString()}\n${debs.join('\n')}\n`);
    await mkdir(join(dir, '..'), { recursive: true });
    // Another process may have won the race: its copy is as good as ours.
    await rename(work, dir).catch(async (error: NodeJS.ErrnoException) => {
      if (!existsSync(join(dir, '.complete'))) throw error;
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
