/**
 * Rollout verdicts over recorded API objects (pure), in the words of `kubectl rollout status`:
 * a Deployment, StatefulSet or DaemonSet is rolled out when its controller has observed the
 * current generation and every replica is updated and available; a Deployment past its
 * progressDeadlineSeconds (ProgressDeadlineExceeded) has failed, and so has any workload whose pod
 * crash-loops or cannot get its image (it would not recover before the budget ends).
 */
import { podProblem, type EventObject, type PodObject } from '../kube/readiness.ts';
import type { RolloutTarget } from './plan.ts';

export type RolloutState = 'ready' | 'progressing' | 'failed';

export interface RolloutVerdict {
  state: RolloutState;
  detail: string;
  /** The pod that shows why, when one does. */
  failingPod?: string;
  /** Its container that is stuck (the one whose log is wanted). */
  failingContainer?: string;
}

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export interface WorkloadStatusObject {
  kind?: string;
  metadata: { name: string; namespace?: string; generation?: number };
  spec?: { replicas?: number; updateStrategy?: { type?: string; rollingUpdate?: { partition?: number } }; selector?: { matchLabels?: Record<string, string> } };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    updatedReplicas?: number;
    availableReplicas?: number;
    readyReplicas?: number;
    currentRevision?: string;
    updateRevision?: string;
    conditions?: Condition[];
    desiredNumberScheduled?: number;
    updatedNumberScheduled?: number;
    numberAvailable?: number;
  };
}

/** Container states that do not heal by waiting. */
const STUCK = /^(CrashLoopBackOff|ImagePullBackOff|ErrImagePull|InvalidImageName|CreateContainerConfigError|CreateContainerError|RunContainerError)$/;

export function stuckPod(pods: PodObject[]): { pod: string; container: string; reason: string } | undefined {
  for (const pod of pods) {
    for (const c of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
      const reason = c.state?.waiting?.reason;
      if (reason && STUCK.test(reason)) return { pod: pod.metadata.name, container: c.name, reason: `container ${c.name} ${reason}${c.restartCount ? ` (restarted ${c.restartCount} times)` : ''}${c.state?.waiting?.message ? `: ${c.state.waiting.message.slice(0, 200)}` : ''}` };
    }
  }
  return undefined;
}

function workloadProgress(target: RolloutTarget, w: WorkloadStatusObject): RolloutVerdict {
  const s = w.status ?? {};
  if (w.metadata.generation !== undefined && (s.observedGeneration ?? 0) < w.metadata.generation) {
    return { state: 'progressing', detail: `waiting for the controller to observe generation ${w.metadata.generation} (seen ${s.observedGeneration ?? 'none'})` };
  }
  if (target.kind === 'Deployment') {
    const progressing = s.conditions?.find((c) => c.type === 'Progressing');
    if (progressing?.reason === 'ProgressDeadlineExceeded') return { state: 'failed', detail: `ProgressDeadlineExceeded: ${progressing.message ?? 'the rollout made no progress within progressDeadlineSeconds'}` };
    const want = w.spec?.replicas ?? 1;
    if ((s.updatedReplicas ?? 0) < want) return { state: 'progressing', detail: `${s.updatedReplicas ?? 0} of ${want} replicas updated` };
    if ((s.replicas ?? 0) > (s.updatedReplicas ?? 0)) return { state: 'progressing', detail: `${(s.replicas ?? 0) - (s.updatedReplicas ?? 0)} old replicas pending termination` };
    if ((s.availableReplicas ?? 0) < (s.updatedReplicas ?? 0)) return { state: 'progressing', detail: `${s.availableReplicas ?? 0} of ${s.updatedReplicas} updated replicas available` };
    return { state: 'ready', detail: `${s.availableReplicas ?? 0}/${want} replicas available` };
  }
  if (target.kind === 'StatefulSet') {
    if (w.spec?.updateStrategy?.type === 'OnDelete') return { state: 'ready', detail: 'updateStrategy OnDelete: not waited for (pods update only when deleted)' };
    const want = w.spec?.replicas ?? 1;
    if ((s.readyReplicas ?? 0) < want) return { state: 'progressing', detail: `${s.readyReplicas ?? 0} of ${want} pods ready` };
    const partition = w.spec?.updateStrategy?.rollingUpdate?.partition ?? 0;
    if (partition > 0) {
      if ((s.updatedReplicas ?? 0) < want - partition) return { state: 'progressing', detail: `${s.updatedReplicas ?? 0} of ${want - partition} pods above partition ${partition} updated` };
      return { state: 'ready', detail: `partitioned roll out complete: ${s.updatedReplicas ?? 0} new pods` };
    }
    if (s.updateRevision !== s.currentRevision) return { state: 'progressing', detail: `${s.updatedReplicas ?? 0} of ${want} pods at revision ${s.updateRevision}` };
    return { state: 'ready', detail: `${s.readyReplicas}/${want} pods ready at revision ${s.currentRevision}` };
  }
  if (w.spec?.updateStrategy?.type === 'OnDelete') return { state: 'ready', detail: 'updateStrategy OnDelete: not waited for (pods update only when deleted)' };
  const want = s.desiredNumberScheduled ?? 0;
  if ((s.updatedNumberScheduled ?? 0) < want) return { state: 'progressing', detail: `${s.updatedNumberScheduled ?? 0} of ${want} updated pods scheduled` };
  if ((s.numberAvailable ?? 0) < want) return { state: 'progressing', detail: `${s.numberAvailable ?? 0} of ${want} updated pods available` };
  return { state: 'ready', detail: `${s.numberAvailable ?? 0}/${want} pods available` };
}

/** The verdict on one workload: `w` undefined means it does not exist (yet). `pods`: the ones its selector matches. */
export function rolloutVerdict(target: RolloutTarget, w: WorkloadStatusObject | undefined, pods: PodObject[]): RolloutVerdict {
  if (!w) return { state: 'progressing', detail: 'not found yet' };
  const progress = workloadProgress(target, w);
  if (progress.state !== 'progressing') return { ...progress, ...(progress.state === 'failed' ? { failingPod: firstUnready(pods) } : {}) };
  const stuck = stuckPod(pods);
  if (stuck) return { state: 'failed', detail: `${progress.detail}; pod ${stuck.pod}: ${stuck.reason}`, failingPod: stuck.pod, failingContainer: stuck.container };
  return { ...progress, failingPod: firstUnready(pods) };
}

const firstUnready = (pods: PodObject[]) => pods.find((p) => podProblem(p) !== undefined)?.metadata.name;

/** The error text when a rollout failed or ran out of time (pure): what it saw, the pod's events and its last log lines. */
export function renderRolloutFailure(target: RolloutTarget, verdict: RolloutVerdict, evidence: { timeoutSeconds?: number; events: EventObject[]; logs?: string; pod?: string }): string {
  const what = `${target.kind} ${target.namespace}/${target.name}`;
  const lines = [verdict.state === 'failed' ? `${what} failed to roll out: ${verdict.detail}` : `${what} did not roll out within ${evidence.timeoutSeconds}s: ${verdict.detail}`];
  if (evidence.pod) {
    const events = evidence.events.filter((e) => e.involvedObject?.name === evidence.pod);
    lines.push(`  events of pod ${evidence.pod}:`, ...(events.length ? events.map((e) => `    ${e.type ?? ''} ${e.reason}: ${e.message}${e.count && e.count > 1 ? ` (x${e.count})` : ''}`) : ['    (none)']));
    const log = (evidence.logs ?? '').trimEnd().split('\n').slice(-20);
    lines.push(`  last log lines of pod ${evidence.pod}:`, ...(log.join('') ? log.map((l) => `    ${l}`) : ['    (no log)']));
  }
  return lines.join('\n');
}
