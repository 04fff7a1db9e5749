/**
 * The backup directory's manifest (pure): what was taken, when, how big, and a sha256 of every
 * volume file, so a restore can prove it put back exactly what was there.
 */
import type { PreBackupHook } from '../../config/lab-config.ts';
import type { EtcdMember, SnapshotStatus } from './etcd.ts';

export const BACKUP_FORMAT = 1;

/** File names in a backup directory (`.age` is appended when encrypted). */
export const BACKUP_FILES = {
  manifest: 'backup.json',
  lock: 'image.lock.json',
  volumes: 'volumes.tar',
  etcdSnapshot: 'etcd-snapshot.db',
  pki: 'pki.tar',
  clusterConfiguration: 'kubeadm-cluster-configuration.yaml',
  caSecret: 'cert-manager-ca-secret.yaml',
  claims: 'persistent-volume-claims.json',
} as const;

/** What a restored control plane must keep, relative to /etc/kubernetes/pki. */
export const CONTROL_PLANE_PKI = ['ca.crt', 'ca.key', 'etcd/ca.crt', 'etcd/ca.key', 'front-proxy-ca.crt', 'front-proxy-ca.key', 'sa.key', 'sa.pub'] as const;

export interface VolumeFile {
  /** Relative to the storage directory. */
  path: string;
  bytes: number;
  sha256: string;
}

export interface BackupItem {
  name: keyof typeof BACKUP_FILES;
  file: string;
  /** Of the file as stored (after encryption when encrypted). */
  bytes: number;
  sha256: string;
  takenAt: string;
}

/** A claim as the cluster had it: enough to pre-bind the restored directory to the same claim. */
export interface ClaimRecord {
  namespace: string;
  name: string;
  storage: string;
  accessModes: string[];
  storageClassName?: string;
}

export type ClusterPart =
  | { taken: true; nodeName: string; etcd: SnapshotStatus; member: EtcdMember; claims: ClaimRecord[]; caSecret: boolean }
  | { taken: false; reason: string };

export interface BackupManifest {
  format: typeof BACKUP_FORMAT;
  startedAt: string;
  finishedAt: string;
  source: { kind: 'lab' | 'server'; name: string; host: string };
  image: { diskSha256?: string; lockSha256?: string };
  encryptedTo: string[];
  items: BackupItem[];
  volumes: { root: string; files: VolumeFile[]; totalBytes: number };
  cluster: ClusterPart;
  preBackup: (PreBackupHook & { ok: boolean; detail: string })[];
}

/** `find DIR -type f -printf '%s\t%P\0'` and `sha256sum -z` of the same files → the volume list (pure). */
export function parseVolumeListing(sizes: string, sums: string, root: string): VolumeFile[] {
  const bytes = new Map<string, number>();
  for (const rec of sizes.split('\0').filter(Boolean)) {
    const tab = rec.indexOf('\t');
    bytes.set(rec.slice(tab + 1), Number(rec.slice(0, tab)));
  }
  const prefix = root.replace(/\/+$/, '') + '/';
  const files: VolumeFile[] = [];
  for (const rec of sums.split('\0').filter(Boolean)) {
    const m = /^\\?([0-9a-f]{64}) [ *](.*)$/s.exec(rec);
    if (!m) throw new Error(`unexpected sha256sum output: ${rec.slice(0, 120)}`);
    const path = m[2]!.startsWith(prefix) ? m[2]!.slice(prefix.length) : m[2]!;
    files.push({ path, sha256: m[1]!, bytes: bytes.get(path) ?? -1 });
  }
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

export interface VolumeComparison {
  checked: number;
  missing: string[];
  mismatched: string[];
  extra: string[];
}

/** Every file of the manifest must be there with its sha256; files that were not are reported too (pure). */
export function compareVolumes(expected: VolumeFile[], actual: VolumeFile[]): VolumeComparison {
  const got = new Map(actual.map((f) => [f.path, f.sha256]));
  const want = new Set(expected.map((f) => f.path));
  return {
    checked: expected.length,
    missing: expected.filter((f) => !got.has(f.path)).map((f) => f.path),
    mismatched: expected.filter((f) => got.has(f.path) && got.get(f.path) !== f.sha256).map((f) => f.path),
    extra: actual.filter((f) => !want.has(f.path)).map((f) => f.path),
  };
}

/** The remote commands that list the volumes (argv; run with sudo). */
export function renderVolumeListingCommands(root: string): { sizes: string[]; sums: string[] } {
  return {
    sizes: ['sudo', 'find', root, '-type', 'f', '-printf', '%s\\t%P\\0'],
    sums: ['sudo', 'find', root, '-type', 'f', '-exec', 'sha256sum', '-z', '{}', '+'],
  };
}
