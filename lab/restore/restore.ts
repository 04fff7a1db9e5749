/**
 * lab:restore: a backup directory onto a fresh lab or a freshly installed server. Every stored
 * file is checked against the manifest first; the cluster steps (planned in cluster-plan.ts)
 * run before the volumes are put back, the pre-binding after; every restored file's sha256 is
 * compared with the manifest's at the end.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LabError } from '../../core/errors.ts';
import { run } from '../../core/exec.ts';
import { sha256File } from '../../core/hash.ts';
import type { Progress } from '../../core/progress.ts';
import { runSteps, type Step, type StepTiming } from '../../core/steps.ts';
import { parseEtcdManifest } from '../backup/etcd.ts';
import { BACKUP_FILES, BACKUP_FORMAT, compareVolumes, parseVolumeListing, renderVolumeListingCommands, type BackupManifest, type VolumeComparison } from '../backup/manifest.ts';
import { fileToRemote, remoteRun, type RemoteHost } from '../backup/remote.ts';
import { planClusterRestore, renderPreboundYaml, type ClusterRestorePlan, type RestoreMode, type RestoreStep } from './cluster-plan.ts';

export interface RestoreOptions {
  backupDir: string;
  remote: RemoteHost;
  mode: RestoreMode;
  /** age identity file for an encrypted backup. */
  identity?: string;
  /** Only the volumes, also when the backup holds cluster state. */
  volumesOnly?: boolean;
  advertiseAddress?: string;
  etcdImage?: string;
  progress: Progress;
  signal?: AbortSignal;
}

interface RestoreContext extends RestoreOptions {
  manifest?: BackupManifest;
  plan?: ClusterRestorePlan;
  comparison?: VolumeComparison;
}

const MINUTE = 60_000;

function need<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Error(`internal: ${what} missing`);
  return v;
}

async function readItem(ctx: RestoreContext, name: keyof typeof BACKUP_FILES): Promise<string | undefined> {
  const item = need(ctx.manifest, 'manifest').items.find((i) => i.name === name);
  if (!item) return undefined;
  const path = join(ctx.backupDir, item.file);
  if (!item.file.endsWith('.age')) return readFile(path, 'utf8');
  if (!ctx.identity) throw new LabError('the backup is encrypted', 'pass the age identity file with --identity FILE', 2);
  return (await run('age', ['-d', '-i', ctx.identity, path], { signal: ctx.signal })).stdout;
}

async function runPlanStep(ctx: RestoreContext, step: RestoreStep): Promise<string> {
  const manifest = need(ctx.manifest, 'manifest');
  const plan = need(ctx.plan, 'plan');
  const opts = { signal: ctx.signal, timeoutMs: 30 * MINUTE };
  if (step.stdin && 'backupItem' in step.stdin) {
    const name = step.stdin.backupItem;
    const item = manifest.items.find((i) => i.name === name);
    if (!item) throw new LabError(`the backup has no ${name}`, 'it was taken without cluster state');
    await fileToRemote(ctx.remote, join(ctx.backupDir, item.file), step.remote, { identity: item.file.endsWith('.age') ? ctx.identity : undefined, signal: ctx.signal });
    return '';
  }
  const input = step.stdin ? { kubeadmConfig: plan.kubeadmConfig, caSecret: plan.caSecret ?? '', prebound: renderPreboundYaml(plan.prebound) }[step.stdin.rendered] : undefined;
  return (await remoteRun(ctx.remote, step.remote, { ...opts, input })).stdout;
}

const hasCluster = (ctx: RestoreContext) => Boolean(ctx.plan);
const isPrebind = (s: RestoreStep) => s.stdin !== undefined && 'rendered' in s.stdin && s.stdin.rendered === 'prebound';

export const RESTORE_STEPS: Step<RestoreContext>[] = [
  {
    title: 'Checking the backup against its manifest',
    timeoutMs: 60 * MINUTE,
    async run(ctx) {
      const path = join(ctx.backupDir, BACKUP_FILES.manifest);
      if (!existsSync(path)) throw new LabError(`${ctx.backupDir} has no ${BACKUP_FILES.manifest}`, 'pass the directory lab:backup wrote', 2);
      const manifest = JSON.parse(await readFile(path, 'utf8')) as BackupManifest;
      if (manifest.format !== BACKUP_FORMAT) throw new LabError(`backup format ${manifest.format} is not ${BACKUP_FORMAT}`, 'restore it with the labsmith version that wrote it');
      for (const item of manifest.items) {
        const got = await sha256File(join(ctx.backupDir, item.file)).catch(() => 'missing');
        if (got !== item.sha256) throw new LabError(`${item.file} does not match the manifest (${got === 'missing' ? 'missing' : `sha256 ${got}`})`, 'the backup is damaged or incomplete: use another copy');
      }
      ctx.manifest = manifest;
      if (manifest.cluster.taken && !ctx.volumesOnly) {
        const clusterConfiguration = need(await readItem(ctx, 'clusterConfiguration'), 'the ClusterConfiguration');
        ctx.plan = planClusterRestore({ manifest, mode: ctx.mode, clusterConfiguration, caSecret: await readItem(ctx, 'caSecret'), advertiseAddress: ctx.advertiseAddress, etcdImage: ctx.etcdImage });
      }
    },
  },
  {
    title: 'Checking the target',
    timeoutMs: 2 * MINUTE,
    async run(ctx) {
      await remoteRun(ctx.remote, ['true'], { signal: ctx.signal, timeoutMs: MINUTE, hint: 'SSH to the target failed: check --host, --ssh-key and its host key in known_hosts' });
      if (!hasCluster(ctx)) return;
      const kubeadm = await remoteRun(ctx.remote, ['sh', '-c', 'command -v kubeadm'], { allowFailure: true, signal: ctx.signal });
      if (kubeadm.exitCode !== 0) {
        throw new LabError(
          `the backup holds cluster state but ${ctx.remote.host} has no kubeadm (an OS-only image)`,
          'restore onto a Kubernetes image (built where pkgs.k8s.io is reachable, or with --artifacts), or pass --volumes-only',
        );
      }
      const admin = await remoteRun(ctx.remote, ['sudo', 'test', '-e', '/etc/kubernetes/admin.conf'], { allowFailure: true, signal: ctx.signal });
      if (admin.exitCode === 0) throw new LabError(`${ctx.remote.host} already runs a cluster`, 'restore onto a fresh machine whose bootstrap has not run kubeadm init (or kubeadm reset it first)');
    },
  },
  {
    title: 'Restoring the control plane',
    timeoutMs: 60 * MINUTE,
    skip: (ctx) => !hasCluster(ctx),
    async run(ctx, { progress }) {
      const plan = need(ctx.plan, 'plan');
      for (const step of plan.steps.filter((s) => !isPrebind(s))) {
        progress.info(step.title);
        const out = await runPlanStep(ctx, step);
        if (plan.etcdDataDir && step.checksEtcdManifest) {
          const mounted = parseEtcdManifest(out).hostDataDir;
          if (mounted !== plan.etcdDataDir) throw new LabError(`etcd's manifest mounts ${mounted}, but the snapshot was restored into ${plan.etcdDataDir}`, 'set etcd.local.dataDir in the ClusterConfiguration to the restored directory');
        }
      }
    },
  },
  {
    title: 'Restoring the volumes',
    timeoutMs: 6 * 60 * MINUTE,
    skip: (ctx) => !need(ctx.manifest, 'manifest').items.some((i) => i.name === 'volumes'),
    async run(ctx) {
      const manifest = need(ctx.manifest, 'manifest');
      const item = manifest.items.find((i) => i.name === 'volumes')!;
      if (item.file.endsWith('.age') && !ctx.identity) throw new LabError('the backup is encrypted', 'pass the age identity file with --identity FILE', 2);
      await remoteRun(ctx.remote, ['sudo', 'install', '-d', '-m', '0755', manifest.volumes.root], { signal: ctx.signal });
      await fileToRemote(ctx.remote, join(ctx.backupDir, item.file), ['sudo', 'tar', '-C', manifest.volumes.root, '--numeric-owner', '--acls', '--xattrs', '-xpf', '-'], {
        identity: item.file.endsWith('.age') ? ctx.identity : undefined,
        signal: ctx.signal,
      });
    },
  },
  {
    title: "Checking every restored file's sha256 against the manifest",
    timeoutMs: 60 * MINUTE,
    async run(ctx) {
      const manifest = need(ctx.manifest, 'manifest');
      const cmds = renderVolumeListingCommands(manifest.volumes.root);
      const present = await remoteRun(ctx.remote, ['sudo', 'test', '-d', manifest.volumes.root], { allowFailure: true, signal: ctx.signal });
      const actual = present.exitCode === 0
        ? parseVolumeListing((await remoteRun(ctx.remote, cmds.sizes, { signal: ctx.signal })).stdout, (await remoteRun(ctx.remote, cmds.sums, { signal: ctx.signal, timeoutMs: 60 * MINUTE })).stdout, manifest.volumes.root)
        : [];
      const c = compareVolumes(manifest.volumes.files, actual);
      ctx.comparison = c;
      if (c.missing.length || c.mismatched.length) {
        throw new LabError(`${c.missing.length} file(s) missing and ${c.mismatched.length} different after the restore, e.g. ${[...c.missing, ...c.mismatched][0]}`, 'the target disk may be full or the archive damaged');
      }
    },
  },
  {
    title: 'Pre-binding the restored volumes',
    timeoutMs: 5 * MINUTE,
    skip: (ctx) => !ctx.plan?.steps.some(isPrebind),
    async run(ctx) {
      await runPlanStep(ctx, need(ctx.plan, 'plan').steps.find(isPrebind)!);
    },
  },
];

export interface RestoreResult {
  manifest: BackupManifest;
  comparison: VolumeComparison;
  plan?: ClusterRestorePlan;
  timings: StepTiming[];
}

export async function restoreBackup(opts: RestoreOptions): Promise<RestoreResult> {
  const ctx: RestoreContext = { ...opts };
  // Nothing to undo: a half-restored machine is reinstalled, and the backup is never touched.
  const timings = await runSteps(RESTORE_STEPS, ctx, { progress: opts.progress, signal: opts.signal, retain: true });
  return { manifest: need(ctx.manifest, 'manifest'), comparison: need(ctx.comparison, 'comparison'), plan: ctx.plan, timings };
}
