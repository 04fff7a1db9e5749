/**
 * etcdctl, etcdutl and etcd 3.5 on the host. Debian 12's etcd is 3.4 (no etcdutl, no
 * --bump-revision), so where the host's are older, trixie's etcd-server and etcd-client are
 * fetched with apt itself into a private apt root (Debian's signed index, checked by apt) and
 * unpacked into the cache: nothing is installed on the host.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LabError } from '../../core/errors.ts';
import { commandExists, run } from '../../core/exec.ts';
import { cacheRoot } from '../../core/paths.ts';

export interface EtcdTools {
  etcd: string;
  etcdctl: string;
  etcdutl: string;
  version: string;
}

export const ETCD_SUITE = 'trixie';
export const ETCD_PACKAGES = ['etcd-server', 'etcd-client'] as const;
const MIN_MINOR = 5;

/** "etcdutl version: 3.5.16" → [3, 5] (pure). */
export function parseEtcdVersion(text: string): { version: string; major: number; minor: number } | undefined {
  const m = /version:\s*(\d+)\.(\d+)\.(\d+)/i.exec(text);
  return m ? { version: `${m[1]}.${m[2]}.${m[3]}`, major: Number(m[1]), minor: Number(m[2]) } : undefined;
}

async function versionOf(etcdutl: string): Promise<ReturnType<typeof parseEtcdVersion>> {
  const r = await run(etcdutl, ['version'], { allowFailure: true });
  return r.exitCode === 0 ? parseEtcdVersion(r.stdout) : undefined;
}

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

export async function ensureEtcdTools(opts: { mirror?: string; cacheDir?: string; signal?: AbortSignal } = {}): Promise<EtcdTools> {
  if (await commandExists('etcdutl')) {
    const v = await versionOf('etcdutl');
    if (v && (v.major > 3 || v.minor >= MIN_MINOR)) return { etcd: 'etcd', etcdctl: 'etcdctl', etcdutl: 'etcdutl', version: v.version };
  }
  const dir = join(opts.cacheDir ?? cacheRoot(), 'host-tools', `etcd-${ETCD_SUITE}`);
  const bin = (name: string) => join(dir, 'root', 'usr', 'bin', name);
  if (!existsSync(join(dir, '.complete'))) await fetchEtcdPackages(dir, opts.mirror ?? 'http://deb.debian.org/debian', opts.signal);
  const v = await versionOf(bin('etcdutl'));
  if (!v || v.minor < MIN_MINOR) throw new LabError(`Debian ${ETCD_SUITE}'s etcdutl in ${dir} is not 3.5 or newer`, `remove ${dir} and rerun; or install etcd-client 3.5 on the host`);
  return { etcd: bin('etcd'), etcdctl: bin('etcdctl'), etcdutl: bin('etcdutl'), version: v.version };
}

async function fetchEtcdPackages(dir: string, mirror: string, signal?: AbortSignal): Promise<void> {
  const work = `${dir}.tmp-${process.pid}`;
  await rm(work, { recursive: true, force: true });
  await mkdir(join(work, 'lists', 'partial'), { recursive: true });
  await mkdir(join(work, 'cache', 'archives', 'partial'), { recursive: true });
  await mkdir(join(work, 'debs'), { recursive: true });
  await writeFile(join(work, 'sources.list'), `deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror} ${ETCD_SUITE} main\n`);
  const apt = renderPrivateAptOptions(work);
  const hint = `etcd 3.5 comes from Debian ${ETCD_SUITE} (${mirror}); the host needs apt and debian-archive-keyring`;
  try {
    await run('apt-get', [...apt, 'update'], { signal, timeoutMs: 5 * 60_000, hint });
    await run('apt-get', [...apt, 'download', ...ETCD_PACKAGES], { cwd: join(work, 'debs'), signal, timeoutMs: 5 * 60_000, hint });
    for (const deb of await readdir(join(work, 'debs'))) await run('dpkg-deb', ['-x', join(work, 'debs', deb), join(work, 'root')]);
    await rm(join(work, 'lists'), { recursive: true, force: true });
    await rm(join(work, 'cache'), { recursive: true, force: true });
    await writeFile(join(work, '.complete'), `${new Date().toISOString()}\n`);
    await mkdir(join(dir, '..'), { recursive: true });
    // Another process may have won the race: its copy is as good as ours.
    await rename(work, dir).catch(async (error: NodeJS.ErrnoException) => {
      if (!existsSync(join(dir, '.complete'))) throw error;
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
