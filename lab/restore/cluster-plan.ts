/**
 * The cluster part of a restore, planned from the backup (pure): kubeadm init with the restored
 * PKI (kubeconfigs issued before stay valid, since the CAs and the service-account key are the
 * same), the cert-manager CA secret before any issuer, and every restored volume pre-bound (a PV
 * with claimRef, a PVC with volumeName) before workloads are applied. `--etcd` restores the
 * snapshot instead, into the directory the etcd static pod will mount, and keeps the node name.
 * The kubeadm config is the lab seed's renderer (InitConfiguration, KubeletConfiguration) around
 * the backup's ClusterConfiguration.
 */
import { dirname, posix } from 'node:path';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { LabError } from '../../core/errors.ts';
import { renderInitConfiguration, renderKubeadmDocuments } from '../../cloud-init/addons/kubeadm-config.ts';
import type { K8sObject } from '../../cloud-init/addons/k8s-object.ts';
import { MANAGED_BY } from '../../cloud-init/addons/k8s-object.ts';
import { CERT_MANAGER } from '../../cloud-init/addons/cert-manager.ts';
import { KUBEADM_ETCD, renderSnapshotRestoreArgs, type EtcdMember } from '../backup/etcd.ts';
import { BACKUP_FILES, type BackupManifest, type ClaimRecord, type VolumeFile } from '../backup/manifest.ts';

export type RestoreMode = 'rebuild' | 'etcd';

export const RESTORE_GUEST_DIR = '/etc/labsmith/restore';
export const ETCD_PREFLIGHT_IGNORE = 'DirAvailable--var-lib-etcd';
export const LOCAL_PATH_CLASS = 'local-path';

/** One thing the restore does on the target: a remote command, optionally fed a backup file or a rendered text. */
export interface RestoreStep {
  title: string;
  remote: string[];
  stdin?: { backupItem: keyof typeof BACKUP_FILES } | { rendered: 'kubeadmConfig' | 'caSecret' | 'prebound' };
  /** Its output is etcd's new manifest: it must mount the directory restored into. */
  checksEtcdManifest?: boolean;
}

export interface ClusterRestorePlan {
  mode: RestoreMode;
  kubeadmConfig: string;
  caSecret?: string;
  prebound: K8sObject[];
  /** Checked after kubeadm init: etcd's new manifest must mount the directory restored into. */
  etcdDataDir?: string;
  steps: RestoreStep[];
}

export interface ClusterRestoreInput {
  manifest: BackupManifest;
  mode: RestoreMode;
  /** kubeadm's ClusterConfiguration as the backup holds it (YAML). */
  clusterConfiguration: string;
  /** The cert-manager CA secret as `kubectl get -o yaml` gave it. */
  caSecret?: string;
  /** The target's address (kubeadm does not move a node's IP: peer URLs and certificates are made anew for it). */
  advertiseAddress?: string;
  /** The etcd image on the target (its etcdutl runs the restore). */
  etcdImage?: string;
}

/** Where a claim's files are in the backup: `<ns>/<pvc>` (stable pathPattern) or local-path's `<pv>_<ns>_<pvc>` (pure). */
export function claimDirectory(claim: ClaimRecord, files: VolumeFile[]): string {
  const stable = `${claim.namespace}/${claim.name}`;
  const tops = new Set(files.map((f) => f.path.split('/')[0]!));
  const generated = [...tops].find((d) => d.endsWith(`_${claim.namespace}_${claim.name}`));
  if (files.some((f) => f.path.startsWith(`${stable}/`)) || !generated) return stable;
  return generated;
}

export function renderPreboundVolumes(claims: ClaimRecord[], files: VolumeFile[], storageDir: string, nodeName: string): K8sObject[] {
  const namespaces: K8sObject[] = [...new Set(claims.map((c) => c.namespace))].sort().map((name) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }));
  return [...namespaces, ...claims.flatMap((claim) => {
    const pvName = `restored-${claim.namespace}-${claim.name}`.slice(0, 253);
    const pv: K8sObject = {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name: pvName, labels: { ...MANAGED_BY } },
      spec: {
        capacity: { storage: claim.storage },
        accessModes: claim.accessModes,
        persistentVolumeReclaimPolicy: 'Retain',
        storageClassName: claim.storageClassName ?? LOCAL_PATH_CLASS,
        claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: claim.namespace, name: claim.name },
        hostPath: { path: posix.join(storageDir, claimDirectory(claim, files)), type: 'Directory' },
        nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [nodeName] }] }] } },
      },
    };
    const pvc: K8sObject = {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: claim.name, namespace: claim.namespace, labels: { ...MANAGED_BY } },
      spec: { accessModes: claim.accessModes, storageClassName: claim.storageClassName ?? LOCAL_PATH_CLASS, volumeName: pvName, resources: { requests: { storage: claim.storage } } },
    };
    return [pv, pvc];
  })];
}

/** A Secret from `kubectl get -o yaml` without what the old cluster stamped on it. */
export function cleanSecret(yamlText: string): K8sObject {
  const s = parse(yamlText) as K8sObject & { metadata: Record<string, unknown> };
  const { name, namespace, labels, annotations } = s.metadata as K8sObject['metadata'];
  const kept = annotations ? Object.fromEntries(Object.entries(annotations).filter(([k]) => k !== 'kubectl.kubernetes.io/last-applied-configuration')) : undefined;
  return { ...s, metadata: { name, namespace, ...(labels ? { labels } : {}), ...(kept && Object.keys(kept).length ? { annotations: kept } : {}) } };
}

function peerUrl(member: EtcdMember, advertiseAddress?: string): string {
  return advertiseAddress ? `https://${advertiseAddress}:2380` : member.initialAdvertisePeerUrls;
}

export function planClusterRestore(input: ClusterRestoreInput): ClusterRestorePlan {
  const cluster = input.manifest.cluster;
  if (!cluster.taken) throw new LabError(`the backup has no cluster state (${cluster.reason})`, 'restore its volumes only: it came from a machine without a cluster');
  const cc = parse(input.clusterConfiguration) as Record<string, unknown> & { etcd?: { local?: Record<string, unknown> } };
  if (cc?.apiVersion !== 'kubeadm.k8s.io/v1beta4' || cc.kind !== 'ClusterConfiguration') {
    throw new LabError(`the backup's ClusterConfiguration is ${String(cc?.apiVersion)} ${String(cc?.kind)}, not kubeadm.k8s.io/v1beta4`, 'migrate it with `kubeadm config migrate` on the old version first');
  }
  const etcdDataDir = cluster.member.hostDataDir;
  // The etcd static pod kubeadm writes mounts etcd.local.dataDir: the restore goes exactly there.
  const clusterConfiguration = { ...cc, etcd: { ...(cc.etcd ?? {}), local: { ...(cc.etcd?.local ?? {}), dataDir: etcdDataDir } } };
  const init = renderInitConfiguration({
    // The same node name: etcd's member, the node object and the certificates all carry it.
    nodeName: cluster.nodeName,
    advertiseAddress: input.advertiseAddress,
    ignorePreflightErrors: input.mode === 'etcd' ? [ETCD_PREFLIGHT_IGNORE] : undefined,
  });
  const kubeadmConfig = renderKubeadmDocuments(init, clusterConfiguration);
  const configPath = `${RESTORE_GUEST_DIR}/kubeadm.yaml`;
  const kubectl = ['sudo', 'kubectl', '--kubeconfig', '/etc/kubernetes/admin.conf'];
  const steps: RestoreStep[] = [
    { title: 'Making the restore directory', remote: ['sudo', 'install', '-d', '-m', '0700', RESTORE_GUEST_DIR, '/etc/kubernetes/pki'] },
    { title: 'Restoring the control-plane PKI', remote: ['sudo', 'tar', '-C', '/etc/kubernetes/pki', '--no-same-owner', '-xpf', '-'], stdin: { backupItem: 'pki' } },
    { title: 'Writing the kubeadm configuration', remote: ['sudo', 'dd', `of=${configPath}`, 'status=none'], stdin: { rendered: 'kubeadmConfig' } },
  ];
  if (input.mode === 'etcd') {
    if (!input.etcdImage) throw new LabError('--etcd needs the etcd image on the target', 'its etcdutl restores the snapshot: the image carries kubeadm\'s etcd image');
    const snapshot = posix.join(dirname(etcdDataDir), 'labsmith-etcd-snapshot.db');
    const member = { ...cluster.member, hostDataDir: etcdDataDir, initialAdvertisePeerUrls: peerUrl(cluster.member, input.advertiseAddress), initialCluster: `${cluster.nodeName}=${peerUrl(cluster.member, input.advertiseAddress)}`, name: cluster.nodeName };
    steps.push(
      { title: 'Copying the etcd snapshot', remote: ['sudo', 'dd', `of=${snapshot}`, 'status=none'], stdin: { backupItem: 'etcdSnapshot' } },
      {
        title: `Restoring etcd into ${etcdDataDir} (--bump-revision, --mark-compacted)`,
        remote: ['sudo', 'ctr', '-n', 'k8s.io', 'run', '--rm', '--mount', `type=bind,src=${dirname(etcdDataDir)},dst=${dirname(etcdDataDir)},options=rbind:rw`, input.etcdImage, 'labsmith-etcd-restore', 'etcdutl', ...renderSnapshotRestoreArgs({ snapshot, member })],
      },
      { title: 'Initialising the control plane on the restored etcd', remote: ['sudo', 'kubeadm', 'init', '--config', configPath, `--ignore-preflight-errors=${ETCD_PREFLIGHT_IGNORE}`] },
      { title: "Checking etcd's new manifest mounts the restored directory", remote: ['sudo', 'cat', KUBEADM_ETCD.manifest], checksEtcdManifest: true },
    );
    return { mode: 'etcd', kubeadmConfig, prebound: [], etcdDataDir, steps };
  }
  const caSecret = input.caSecret
    ? [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: CERT_MANAGER.namespace } }, cleanSecret(input.caSecret)].map((o) => stringify(o, { lineWidth: 0 })).join('---\n')
    : undefined;
  const prebound = renderPreboundVolumes(cluster.claims, input.manifest.volumes.files, input.manifest.volumes.root, cluster.nodeName);
  steps.push({ title: 'Initialising the control plane with the restored PKI', remote: ['sudo', 'kubeadm', 'init', '--config', configPath] });
  if (caSecret) {
    steps.push({ title: 'Restoring the cert-manager CA secret (before any issuer)', remote: [...kubectl, 'apply', '-f', '-'], stdin: { rendered: 'caSecret' } });
  }
  if (prebound.length) steps.push({ title: 'Pre-binding the restored volumes (PV with claimRef, PVC with volumeName)', remote: [...kubectl, 'apply', '-f', '-'], stdin: { rendered: 'prebound' } });
  return { mode: 'rebuild', kubeadmConfig, caSecret, prebound, steps };
}

export function renderPreboundYaml(objects: K8sObject[]): string {
  return objects.map((o) => stringify(o, { lineWidth: 0 })).join('---\n');
}

/** Parsed documents of a rendered kubeadm config (for checks). */
export function kubeadmDocs(text: string): unknown[] {
  return parseAllDocuments(text).map((d) => d.toJSON());
}
