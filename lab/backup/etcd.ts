/**
 * etcd backup and restore for a kubeadm control plane: the etcdctl/etcdutl command lines
 * (pure), the data directory etcd's static pod really mounts (read from its manifest, never
 * assumed), and the effectful steps that run them.
 */
import { parse } from 'yaml';
import { LabError } from '../../core/errors.ts';
import { run } from '../../core/exec.ts';

/** kubeadm's etcd files, as the static pod sees them. */
export const KUBEADM_ETCD = {
  manifest: '/etc/kubernetes/manifests/etcd.yaml',
  caCert: '/etc/kubernetes/pki/etcd/ca.crt',
  // kubeadm's own docs take the snapshot with the server pair; healthcheck-client works too.
  clientCert: '/etc/kubernetes/pki/etcd/server.crt',
  clientKey: '/etc/kubernetes/pki/etcd/server.key',
  endpoint: 'https://127.0.0.1:2379',
} as const;

export interface EtcdClientTls {
  endpoint: string;
  caCert: string;
  clientCert: string;
  clientKey: string;
}

export function renderSnapshotSaveArgs(tls: EtcdClientTls, snapshotPath: string): string[] {
  return ['--endpoints', tls.endpoint, '--cacert', tls.caCert, '--cert', tls.clientCert, '--key', tls.clientKey, '--command-timeout', '60s', 'snapshot', 'save', snapshotPath];
}

/** What a restore must reuse from the running member: its name, peer URL and cluster, and where its data lives on the host. */
export interface EtcdMember {
  name: string;
  initialCluster: string;
  initialAdvertisePeerUrls: string;
  /** --data-dir as the container sees it. */
  containerDataDir: string;
  /** The host directory mounted there: where a restore must write. */
  hostDataDir: string;
  image?: string;
}

interface PodSpecShape {
  spec?: {
    containers?: { name?: string; image?: string; command?: string[]; args?: string[]; volumeMounts?: { name: string; mountPath: string }[] }[];
    volumes?: { name: string; hostPath?: { path: string } }[];
  };
}

function flagValue(argv: string[], flag: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith(`${flag}=`)) return a.slice(flag.length + 1);
    if (a === flag) return argv[i + 1];
  }
  return undefined;
}

/** The member from etcd's static pod manifest (pure): flags from its command, the data dir's host path from the volume mounted at --data-dir. */
export function parseEtcdManifest(text: string, source = KUBEADM_ETCD.manifest): EtcdMember {
  const pod = parse(text) as PodSpecShape;
  const container = pod?.spec?.containers?.find((c) => c.name === 'etcd') ?? pod?.spec?.containers?.[0];
  if (!container) throw new LabError(`${source} has no etcd container`, 'is this the etcd static pod manifest kubeadm writes?');
  const argv = [...(container.command ?? []), ...(container.args ?? [])];
  const need = (flag: string): string => {
    const v = flagValue(argv, flag);
    if (!v) throw new LabError(`${source}: the etcd command has no ${flag}`, 'restore needs it to rebuild the same member; check the manifest');
    return v;
  };
  const containerDataDir = need('--data-dir').replace(/\/+$/, '');
  // The mount that holds --data-dir: the longest mountPath that is it or a parent of it.
  const mounts = (container.volumeMounts ?? []).filter((m) => containerDataDir === m.mountPath.replace(/\/+$/, '') || containerDataDir.startsWith(`${m.mountPath.replace(/\/+$/, '')}/`));
  const mount = mounts.sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  if (!mount) throw new LabError(`${source}: no volume is mounted at --data-dir ${containerDataDir}`, 'etcd would keep its data inside the container: fix the manifest before restoring');
  const volume = pod.spec?.volumes?.find((v) => v.name === mount.name);
  if (!volume?.hostPath?.path) throw new LabError(`${source}: volume ${mount.name} (mounted at ${mount.mountPath}) is not a hostPath`, 'restore writes into the host directory etcd mounts; this manifest has none');
  const rest = containerDataDir.slice(mount.mountPath.replace(/\/+$/, '').length);
  return {
    name: need('--name'),
    initialCluster: flagValue(argv, '--initial-cluster') ?? `${need('--name')}=${need('--initial-advertise-peer-urls')}`,
    initialAdvertisePeerUrls: need('--initial-advertise-peer-urls'),
    containerDataDir,
    hostDataDir: volume.hostPath.path.replace(/\/+$/, '') + rest,
    image: container.image,
  };
}

export interface SnapshotStatus {
  hash: number;
  revision: number;
  totalKey: number;
  totalSize: number;
}

/** `etcdutl snapshot status -w json` output (pure). */
export function parseSnapshotStatus(json: string): SnapshotStatus {
  const raw = JSON.parse(json) as Record<string, unknown>;
  const num = (k: string) => {
    const v = raw[k];
    if (typeof v !== 'number') throw new LabError(`etcdutl snapshot status gave no ${k}: ${json.slice(0, 200)}`, 'is the snapshot file complete?');
    return v;
  };
  return { hash: num('hash'), revision: num('revision'), totalKey: num('totalKey'), totalSize: num('totalSize') };
}

/** A restore that outruns every revision clients saw: watchers and caches see a newer, compacted store. */
export const DEFAULT_BUMP_REVISION = 1_000_000_000;

export function renderSnapshotRestoreArgs(opts: { snapshot: string; member: EtcdMember; dataDir?: string; bumpRevision?: number }): string[] {
  return [
    'snapshot', 'restore', opts.snapshot,
    '--data-dir', opts.dataDir ?? opts.member.hostDataDir,
    '--name', opts.member.name,
    '--initial-cluster', opts.member.initialCluster,
    '--initial-advertise-peer-urls', opts.member.initialAdvertisePeerUrls,
    '--bump-revision', String(opts.bumpRevision ?? DEFAULT_BUMP_REVISION),
    '--mark-compacted',
  ];
}

/** etcdctl (3.5) on this host against a reachable endpoint. */
export async function saveSnapshotWithHostEtcdctl(etcdctl: string, tls: EtcdClientTls, snapshotPath: string, signal?: AbortSignal): Promise<void> {
  await run(etcdctl, renderSnapshotSaveArgs(tls, snapshotPath), { env: { ETCDCTL_API: '3' }, signal, timeoutMs: 5 * 60_000, hint: 'etcdctl needs the etcd CA and a client certificate the server accepts' });
}

export async function readSnapshotStatus(etcdutl: string, snapshotPath: string, signal?: AbortSignal): Promise<SnapshotStatus> {
  const r = await run(etcdutl, ['snapshot', 'status', snapshotPath, '-w', 'json'], { signal, hint: 'the snapshot may be truncated or not an etcd snapshot' });
  return parseSnapshotStatus(r.stdout);
}

/** Restores into an empty directory only: etcdutl refuses a non-empty one, and so do we, before it runs. */
export async function restoreSnapshot(etcdutl: string, opts: { snapshot: string; member: EtcdMember; dataDir?: string; bumpRevision?: number }, signal?: AbortSignal): Promise<void> {
  await run(etcdutl, renderSnapshotRestoreArgs(opts), { signal, timeoutMs: 10 * 60_000, hint: `the target ${opts.dataDir ?? opts.member.hostDataDir} must not exist or be empty (move the old one aside)` });
}
