/**
 * Executing the apply plan (effectful): per source, in order, the payload streamed over SSH into
 * the guest script (server-side apply with kubectl there), then the source's rollouts waited
 * for from the host through the API (the verdict is rollout.ts's), each bounded by the
 * source's rolloutTimeoutSeconds; a failure carries the failing pod's events and last log lines.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { LabError, tailLines } from '../../core/errors.ts';
import { REPO_ROOT, WORKLOAD_GUEST_FILES } from '../../core/paths.ts';
import type { Progress } from '../../core/progress.ts';
import { sleep } from '../../core/sleep.ts';
import { renderTar } from '../../core/tar.ts';
import { resourcePath, type KubeClient } from '../kube/client.ts';
import type { EventObject, PodObject } from '../kube/readiness.ts';
import { sshRun, type SshTarget } from '../ssh.ts';
import { parseApplyOutput, summarizeChanges, type ObjectChangeLine } from './changes.ts';
import { GUEST_RECEIVE_COMMAND, renderApplyPayload } from './payload.ts';
import type { SourcePlan } from './plan.ts';
import type { PreparedWorkloads } from './prepare.ts';
import { renderRolloutFailure, rolloutVerdict, type RolloutVerdict, type WorkloadStatusObject } from './rollout.ts';
import type { RolloutTarget } from './plan.ts';

export const applyScriptPath = () => join(REPO_ROOT, WORKLOAD_GUEST_FILES.scriptSource);

/** A kustomization's tree is shipped whole: bounded, so a root that turned out to be a whole checkout is named instead. */
export const MAX_KUSTOMIZATION_FILES = 2000;

/** Every file under a kustomization's root, relative paths in name order (dot-directories such as .git left out). */
export async function readKustomizationFiles(dir: string): Promise<{ path: string; content: Buffer }[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .filter((f) => !relative(dir, f).split('/').some((p) => p.startsWith('.') && p.length > 1))
    .sort();
  if (files.length > MAX_KUSTOMIZATION_FILES) throw new LabError(`the kustomization's files under ${dir} are ${files.length} (more than ${MAX_KUSTOMIZATION_FILES}): it would be shipped whole to the guest`, 'keep a kustomization and its bases in one small directory tree', 2);
  return Promise.all(files.map(async (f) => ({ path: relative(dir, f), content: await readFile(f) })));
}

/** The bytes streamed to the guest for one source. */
export async function buildSourcePayload(source: SourcePlan, diff: boolean): Promise<Buffer> {
  const kustomizations = source.kustomizationRoot ? { [source.dirName]: await readKustomizationFiles(source.kustomizationRoot.dir) } : {};
  return renderTar(renderApplyPayload({ plan: { sources: [source] }, script: await readFile(applyScriptPath(), 'utf8'), diff, kustomizations }));
}

export interface ApplyOptions {
  prepared: PreparedWorkloads;
  ssh: SshTarget;
  kube: KubeClient;
  progress: Progress;
  diff: boolean;
  signal?: AbortSignal;
  /** Between rollout polls. */
  pollMs?: number;
}

export async function applyWorkloads(opts: ApplyOptions): Promise<ObjectChangeLine[]> {
  const changes: ObjectChangeLine[] = [];
  for (const source of opts.prepared.plan.sources) {
    opts.progress.info(`applying workload source ${source.name}`);
    const r = await sshRun(opts.ssh, ['sudo', 'sh', '-c', GUEST_RECEIVE_COMMAND], { input: await buildSourcePayload(source, opts.diff), allowFailure: true, timeoutMs: 10 * 60_000, signal: opts.signal });
    const outputs = parseApplyOutput(r.stdout);
    if (r.exitCode !== 0) {
      throw new LabError(
        `applying workload source ${source.name} failed (exit ${r.exitCode}):\n${tailLines(`${r.stdout.replace(/^@@labsmith .*\n/gm, '')}\n${r.stderr}`, 30)}`,
        'the lines above are kubectl\'s in the guest; fix the manifests and rerun npm run lab:apply',
      );
    }
    const mine = summarizeChanges(outputs, opts.prepared.known.filter((k) => k.source === source.name));
    changes.push(...mine);
    for (const target of source.rollouts) await waitForRollout(opts, target, source.rolloutTimeoutSeconds);
  }
  return changes;
}

async function observe(kube: KubeClient, target: RolloutTarget, signal?: AbortSignal): Promise<{ workload?: WorkloadStatusObject; pods: PodObject[] }> {
  const workload = await kube.get<WorkloadStatusObject>(resourcePath('apps/v1', target.kind, target.namespace, target.name), signal).catch((e: { status?: number }) => {
    if (e.status === 404) return undefined;
    throw e;
  });
  const labels = workload?.spec?.selector?.matchLabels;
  const selector = labels ? Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',') : undefined;
  const pods = selector ? await kube.list<PodObject>(`${resourcePath('v1', 'Pod', target.namespace)}?labelSelector=${encodeURIComponent(selector)}`, signal) : [];
  return { workload, pods };
}

/** Polls until ready; a failed verdict or the budget's end throws with the failing pod's events and logs. */
export async function waitForRollout(opts: Pick<ApplyOptions, 'kube' | 'progress' | 'signal' | 'pollMs'>, target: RolloutTarget, timeoutSeconds: number, now: () => number = Date.now): Promise<RolloutVerdict> {
  const deadline = now() + timeoutSeconds * 1000;
  let verdict: RolloutVerdict = { state: 'progressing', detail: 'not observed yet' };
  let last = '';
  for (;;) {
    const seen = await observe(opts.kube, target, opts.signal);
    verdict = rolloutVerdict(target, seen.workload, seen.pods);
    if (verdict.state === 'ready') {
      opts.progress.info(`${target.kind} ${target.namespace}/${target.name} rolled out: ${verdict.detail}`);
      return verdict;
    }
    if (verdict.detail !== last) opts.progress.info(`${target.kind} ${target.namespace}/${target.name}: ${verdict.detail}`);
    last = verdict.detail;
    if (verdict.state === 'failed' || now() >= deadline) break;
    await sleep(opts.pollMs ?? 2000, opts.signal);
  }
  const pod = verdict.failingPod;
  const events = pod ? await opts.kube.list<EventObject>(`${resourcePath('v1', 'Event', target.namespace)}?fieldSelector=${encodeURIComponent(`involvedObject.name=${pod}`)}`, opts.signal).catch(() => []) : [];
  const logs = pod ? await podLogTail(opts.kube, target.namespace, pod, verdict.failingContainer, opts.signal) : undefined;
  throw new LabError(renderRolloutFailure(target, verdict, { timeoutSeconds, events, logs, pod }), `kubectl -n ${target.namespace} describe ${target.kind.toLowerCase()} ${target.name} (npm run lab:ssh -- sudo kubectl --kubeconfig /etc/kubernetes/admin.conf …); fix the manifests and rerun npm run lab:apply`);
}

/** The last lines of the pod's log: the previous container's when it crashed, else the current one's. */
async function podLogTail(kube: KubeClient, namespace: string, pod: string, container: string | undefined, signal?: AbortSignal): Promise<string> {
  // A pod of several containers needs the container named.
  const path = `/api/v1/namespaces/${namespace}/pods/${pod}/log?tailLines=20${container ? `&container=${encodeURIComponent(container)}` : ''}`;
  for (const p of [`${path}&previous=true`, path]) {
    const r = await kube.request('GET', p, { signal }).catch(() => ({ status: 0, text: '' }));
    if (r.status === 200 && r.text.trim()) return r.text;
  }
  return '';
}
