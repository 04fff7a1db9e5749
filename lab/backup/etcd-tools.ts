/**
 * etcdctl, etcdutl and etcd 3.5 on the host. Debian 12's etcd is 3.4 (no etcdutl, no
 * --bump-revision), so where the host's are older, trixie's etcd-server and etcd-client are
 * fetched with apt itself into a private apt root (core/private-apt.ts) and unpacked into the
 * cache: nothing is installed on the host.
 */
import { join } from 'node:path';
import { LabError } from '../../core/errors.ts';
import { commandExists, run } from '../../core/exec.ts';
import { cacheRoot } from '../../core/paths.ts';
import { DEFAULT_DEBIAN_MIRROR, ensureDebianPackagesUnpacked } from '../../core/private-apt.ts';

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

export { renderPrivateAptOptions } from '../../core/private-apt.ts';

export async function ensureEtcdTools(opts: { mirror?: string; cacheDir?: string; signal?: AbortSignal } = {}): Promise<EtcdTools> {
  if (await commandExists('etcdutl')) {
    const v = await versionOf('etcdutl');
    if (v && (v.major > 3 || v.minor >= MIN_MINOR)) return { etcd: 'etcd', etcdctl: 'etcdctl', etcdutl: 'etcdutl', version: v.version };
  }
  const dir = join(opts.cacheDir ?? cacheRoot(), 'host-tools', `etcd-${ETCD_SUITE}`);
  const bin = (name: string) => join(dir, 'root', 'usr', 'bin', name);
  const mirror = opts.mirror ?? DEFAULT_DEBIAN_MIRROR;
  await ensureDebianPackagesUnpacked(dir, { suite: ETCD_SUITE, packages: ETCD_PACKAGES, mirror, signal: opts.signal, hint: `etcd 3.5 comes from Debian ${ETCD_SUITE} (${mirror}); the host needs apt and debian-archive-keyring` });
  const v = await versionOf(bin('etcdutl'));
  if (!v || v.minor < MIN_MINOR) throw new LabError(`Debian ${ETCD_SUITE}'s etcdutl in ${dir} is not 3.5 or newer`, `remove ${dir} and rerun; or install etcd-client 3.5 on the host`);
  return { etcd: bin('etcd'), etcdctl: bin('etcdctl'), etcdutl: bin('etcdutl'), version: v.version };
}
