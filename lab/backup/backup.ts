/**
 * lab:backup: a lab's or the real server's data and cluster state into a directory of
 * owner-only files, streamed over SSH (tar | [age] > file), with a manifest holding a sha256
 * of every volume file. A table of contents of steps; a failed backup removes its directory
 * unless --retain.
 */
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LabError } from '../../core/errors.ts';
import { run, type RunResult } from '../../core/exec.ts';
import { sha256, sha256File } from '../../core/hash.ts';
import { IMAGE_FILES } from '../../core/paths.ts';
import type { Progress } from '../../core/progress.ts';
import { runSteps, type Step, type StepTiming } from '../../core/steps.ts';
import type { PreBackupHook } from '../../config/lab-config.ts';
import { LAB_CA_ISSUER, CERT_MANAGER } from '../../cloud-init/addons/cert-manager.ts';
import { parseSha256Sums } from '../../images/manifest.ts';
import { KUBEADM_ETCD, parseEtcdManifest, readSnapshotStatus, renderSnapshotSaveArgs } from './etcd.ts';
import { ensureEtcdTools } from './etcd-tools.ts';
import {
  BACKUP_FILES, BACKUP_FORMAT, CONTROL_PLANE_PKI, parseVolumeListing, renderVolumeListingCommands,
  type BackupItem, type BackupManifest, type ClaimRecord, type ClusterPart, type VolumeFile,
} from './manifest.ts';
import { remoteRun, remoteToFile, type RemoteHost } from './remote.ts';

export const ADMIN_KUBECONFIG = '/etc/kubernetes/admin.conf';
const SNAPSHOT_NAME = 'labsmith-backup.db';

export interface BackupOptions {
  source: { kind: 'lab' | 'server'; name: string };
  remote: RemoteHost;
  storageDir: string;
  outDir: string;
  /** age recipients (age1…, ssh-ed25519 …): every data file is encrypted to them. */
  recipients: string[];
  preBackup: PreBackupHook[];
  /** kubectl on this host with this kubeconfig instead of the guest's admin.conf over SSH. */
  kubeconfig?: string;
  /** The lab's image directory (its SHA256SUMS names the disk) and the lock file it was built from. */
  imageDir?: string;
  lockFile?: string;
  progress: Progress;
  signal?: AbortSignal;
  retain?: boolean;
}

interface BackupContext extends BackupOptions {
  startedAt: string;
  items: BackupItem[];
  volumes: VolumeFile[];
  cluster: ClusterPart;
  hooks: BackupManifest['preBackup'];
  hasCluster?: boolean;
}

const MINUTE = 60_000;

function kubectl(ctx: BackupContext, args: string[], allowFailure = false): Promise<RunResult> {
  if (ctx.kubeconfig) return run('kubectl', ['--kubeconfig', ctx.kubeconfig, ...args], { signal: ctx.signal, allowFailure, timeoutMs: 5 * MINUTE });
  return remoteRun(ctx.remote, ['sudo', 'kubectl', '--kubeconfig', ADMIN_KUBECONFIG, ...args], { signal: ctx.signal, allowFailure, timeoutMs: 5 * MINUTE });
}

const stored = (ctx: BackupContext, name: keyof typeof BACKUP_FILES) => `${BACKUP_FILES[name]}${ctx.recipients.length ? '.age' : ''}`;

async function recordItem(ctx: BackupContext, name: keyof typeof BACKUP_FILES, file: string): Promise<void> {
  const path = join(ctx.outDir, file);
  await chmod(path, 0o600);
  ctx.items.push({ name, file, bytes: (await stat(path)).size, sha256: await sha256File(path), takenAt: new Date().toISOString() });
}

/** A small file: written owner-only, or straight into age. */
async function writeItem(ctx: BackupContext, name: keyof typeof BACKUP_FILES, content: string): Promise<void> {
  const file = stored(ctx, name);
  const path = join(ctx.outDir, file);
  if (ctx.recipients.length) await run('age', [...ctx.recipients.flatMap((r) => ['-r', r]), '-o', path], { input: content, signal: ctx.signal, hint: 'age encrypts backups: apt-get install age' });
  else await writeFile(path, content, { mode: 0o600 });
  await recordItem(ctx, name, file);
}

export const BACKUP_STEPS: Step<BackupContext>[] = [
  {
    title: 'Creating the backup directory',
    timeoutMs: MINUTE,
    async run(ctx, { onUndo }) {
      if (existsSync(ctx.outDir) && (await readdir(ctx.outDir)).length) throw new LabError(`${ctx.outDir} is not empty`, 'back up into a new directory: each backup is one directory', 2);
      await mkdir(ctx.outDir, { recursive: true, mode: 0o700 });
      await chmod(ctx.outDir, 0o700);
      onUndo('backup directory', () => rm(ctx.outDir, { recursive: true, force: true }));
      await remoteRun(ctx.remote, ['true'], { signal: ctx.signal, timeoutMs: MINUTE, hint: 'SSH to the machine failed: check --host, --ssh-key and its host key in known_hosts' });
    },
  },
  {
    title: 'Looking for a cluster',
    timeoutMs: 2 * MINUTE,
    async run(ctx) {
      ctx.hasCluster = ctx.kubeconfig ? true : (await remoteRun(ctx.remote, ['sudo', 'test', '-e', ADMIN_KUBECONFIG], { allowFailure: true, signal: ctx.signal })).exitCode === 0;
      if (!ctx.hasCluster) {
        ctx.cluster = { taken: false, reason: `no cluster on ${ctx.remote.host} (${ADMIN_KUBECONFIG} does not exist): data only` };
        ctx.progress.info(ctx.cluster.reason);
      }
    },
  },
  {
    title: 'Running pre-backup commands',
    timeoutMs: 30 * MINUTE,
    skip: (ctx) => ctx.preBackup.length === 0,
    hint: 'a pre-backup command failed: the volume copy would not be consistent, so the backup stops',
    async run(ctx) {
      for (const hook of ctx.preBackup) {
        if (!ctx.hasCluster) {
          ctx.hooks.push({ ...hook, ok: false, detail: 'not run: no cluster' });
          continue;
        }
        const r = await kubectl(ctx, ['-n', hook.namespace, 'exec', hook.target, ...(hook.container ? ['-c', hook.container] : []), '--', ...hook.command]);
        ctx.hooks.push({ ...hook, ok: true, detail: r.stdout.split('\n').slice(-3).join('\n') });
      }
    },
  },
  {
    title: 'Listing volume files and their sha256',
    timeoutMs: 60 * MINUTE,
    async run(ctx) {
      const exists = await remoteRun(ctx.remote, ['sudo', 'test', '-d', ctx.storageDir], { allowFailure: true, signal: ctx.signal });
      if (exists.exitCode !== 0) {
        ctx.progress.warn(`${ctx.storageDir} does not exist on ${ctx.remote.host}: no volumes to back up`);
        return;
      }
      const cmds = renderVolumeListingCommands(ctx.storageDir);
      const sizes = await remoteRun(ctx.remote, cmds.sizes, { signal: ctx.signal, timeoutMs: 60 * MINUTE });
      const sums = await remoteRun(ctx.remote, cmds.sums, { signal: ctx.signal, timeoutMs: 60 * MINUTE });
      ctx.volumes = parseVolumeListing(sizes.stdout, sums.stdout, ctx.storageDir);
    },
  },
  {
    title: 'Streaming the volumes',
    timeoutMs: 6 * 60 * MINUTE,
    skip: (ctx) => ctx.volumes.length === 0,
    async run(ctx) {
      const file = stored(ctx, 'volumes');
      await remoteToFile(ctx.remote, ['sudo', 'tar', '-C', ctx.storageDir, '--numeric-owner', '--acls', '--xattrs', '-cf', '-', '.'], join(ctx.outDir, file), { recipients: ctx.recipients, signal: ctx.signal });
      await recordItem(ctx, 'volumes', file);
      if (ctx.recipients.length) return;
      // The archive holds every listed file (a truncated stream would not).
      const listing = await run('tar', ['-tf', join(ctx.outDir, file)], { signal: ctx.signal });
      const inTar = new Set(listing.stdout.split('\n').map((l) => l.replace(/^\.\//, '')));
      const absent = ctx.volumes.filter((v) => !inTar.has(v.path));
      if (absent.length) throw new LabError(`the volume archive lacks ${absent.length} listed file(s), e.g. ${absent[0]!.path}`, 'files changed while the backup ran: stop the writer or add a pre-backup command, then back up again');
    },
  },
  {
    title: 'Taking an etcd snapshot through the etcd static pod',
    timeoutMs: 15 * MINUTE,
    skip: (ctx) => !ctx.hasCluster,
    hint: 'the snapshot runs etcdctl inside the etcd container (crictl exec) with the etcd client certificates',
    async run(ctx, { signal }) {
      const member = parseEtcdManifest((await remoteRun(ctx.remote, ['sudo', 'cat', KUBEADM_ETCD.manifest], { signal })).stdout);
      const id = (await remoteRun(ctx.remote, ['sudo', 'crictl', 'ps', '--name', '^etcd$', '--state', 'Running', '-q'], { signal })).stdout.trim().split('\n')[0];
      if (!id) throw new LabError('no running etcd container', 'is the control plane up? sudo crictl ps --name etcd');
      await remoteRun(ctx.remote, ['sudo', 'crictl', 'exec', id, 'etcdctl', ...renderSnapshotSaveArgs(KUBEADM_ETCD, `${member.containerDataDir}/${SNAPSHOT_NAME}`)], { signal, timeoutMs: 10 * MINUTE });
      const plain = join(ctx.outDir, `${BACKUP_FILES.etcdSnapshot}.partial`);
      try {
        await remoteToFile(ctx.remote, ['sudo', 'cat', `${member.hostDataDir}/${SNAPSHOT_NAME}`], plain, { signal });
        await remoteRun(ctx.remote, ['sudo', 'rm', '-f', `${member.hostDataDir}/${SNAPSHOT_NAME}`], { signal });
        const tools = await ensureEtcdTools({ signal });
        const etcd = await readSnapshotStatus(tools.etcdutl, plain, signal);
        const file = stored(ctx, 'etcdSnapshot');
        if (ctx.recipients.length) await run('age', [...ctx.recipients.flatMap((r) => ['-r', r]), '-o', join(ctx.outDir, file), plain], { signal });
        else await run('mv', [plain, join(ctx.outDir, file)]);
        await recordItem(ctx, 'etcdSnapshot', file);
        const nodeName = (await kubectl(ctx, ['get', 'nodes', '-o', 'jsonpath={.items[0].metadata.name}'])).stdout.trim();
        ctx.cluster = { taken: true, nodeName, etcd, member, claims: [], caSecret: false };
      } finally {
        await rm(plain, { force: true });
      }
    },
  },
  {
    title: 'Saving the kubeadm configuration, control-plane PKI, CA secret and claims',
    timeoutMs: 10 * MINUTE,
    skip: (ctx) => !ctx.hasCluster,
    async run(ctx, { signal }) {
      const clusterConfiguration = (await kubectl(ctx, ['-n', 'kube-system', 'get', 'configmap', 'kubeadm-config', '-o', 'jsonpath={.data.ClusterConfiguration}'])).stdout;
      await writeItem(ctx, 'clusterConfiguration', clusterConfiguration);
      const pki = stored(ctx, 'pki');
      await remoteToFile(ctx.remote, ['sudo', 'tar', '-C', '/etc/kubernetes/pki', '-cf', '-', ...CONTROL_PLANE_PKI], join(ctx.outDir, pki), { recipients: ctx.recipients, signal });
      await recordItem(ctx, 'pki', pki);
      const secret = await kubectl(ctx, ['-n', CERT_MANAGER.namespace, 'get', 'secret', LAB_CA_ISSUER, '-o', 'yaml'], true);
      if (secret.exitCode === 0) await writeItem(ctx, 'caSecret', secret.stdout);
      const claims = parseClaims((await kubectl(ctx, ['get', 'pvc', '-A', '-o', 'json'])).stdout);
      await writeItem(ctx, 'claims', JSON.stringify(claims, null, 2) + '\n');
      if (ctx.cluster.taken) ctx.cluster = { ...ctx.cluster, claims, caSecret: secret.exitCode === 0 };
    },
  },
  {
    title: 'Writing the backup manifest',
    timeoutMs: MINUTE,
    async run(ctx) {
      let lockSha256: string | undefined;
      if (ctx.lockFile && existsSync(ctx.lockFile)) {
        await copyFile(ctx.lockFile, join(ctx.outDir, BACKUP_FILES.lock));
        lockSha256 = sha256(await readFile(ctx.lockFile));
        await recordItem(ctx, 'lock', BACKUP_FILES.lock);
      }
      const sums = ctx.imageDir ? await readFile(join(ctx.imageDir, IMAGE_FILES.sums), 'utf8').catch(() => '') : '';
      const manifest: BackupManifest = {
        format: BACKUP_FORMAT,
        startedAt: ctx.startedAt,
        finishedAt: new Date().toISOString(),
        source: { ...ctx.source, host: `${ctx.remote.user}@${ctx.remote.host}:${ctx.remote.port}` },
        image: { diskSha256: parseSha256Sums(sums)[IMAGE_FILES.disk], lockSha256 },
        encryptedTo: ctx.recipients,
        items: ctx.items,
        volumes: { root: ctx.storageDir, files: ctx.volumes, totalBytes: ctx.volumes.reduce((n, f) => n + f.bytes, 0) },
        cluster: ctx.cluster,
        preBackup: ctx.hooks,
      };
      await writeFile(join(ctx.outDir, BACKUP_FILES.manifest), JSON.stringify(manifest, null, 2) + '\n', { mode: 0o600 });
    },
  },
];

/** `kubectl get pvc -A -o json` → the claims a restore pre-binds (pure). */
export function parseClaims(json: string): ClaimRecord[] {
  const list = JSON.parse(json) as { items: { metadata: { namespace: string; name: string }; spec: { accessModes?: string[]; storageClassName?: string; resources?: { requests?: { storage?: string } } } }[] };
  return list.items.map((i) => ({
    namespace: i.metadata.namespace,
    name: i.metadata.name,
    storage: i.spec.resources?.requests?.storage ?? '1Gi',
    accessModes: i.spec.accessModes ?? ['ReadWriteOnce'],
    ...(i.spec.storageClassName ? { storageClassName: i.spec.storageClassName } : {}),
  }));
}

export interface BackupResult {
  dir: string;
  manifest: BackupManifest;
  timings: StepTiming[];
  bytes: number;
}

export async function takeBackup(opts: BackupOptions): Promise<BackupResult> {
  const ctx: BackupContext = { ...opts, startedAt: new Date().toISOString(), items: [], volumes: [], hooks: [], cluster: { taken: false, reason: 'not looked for' } };
  const timings = await runSteps(BACKUP_STEPS, ctx, { progress: opts.progress, signal: opts.signal, retain: opts.retain });
  const manifest = JSON.parse(await readFile(join(opts.outDir, BACKUP_FILES.manifest), 'utf8')) as BackupManifest;
  return { dir: opts.outDir, manifest, timings, bytes: manifest.items.reduce((n, i) => n + i.bytes, 0) };
}
