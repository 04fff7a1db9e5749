/** Runs a probe pod to completion through the API and reads what it printed. */
import { sleep } from '../../../core/sleep.ts';
import { resourcePath, type KubeClient, type KubeObject } from '../../kube/client.ts';
import { podProblem, type PodObject } from '../../kube/readiness.ts';

export interface PodRun {
  phase: string;
  exitCode?: number;
  logs: string;
  /** Why it did not finish (image missing, unschedulable, still running at the deadline). */
  problem?: string;
}

const FINAL = new Set(['Succeeded', 'Failed']);

export async function runPodToCompletion(kube: KubeClient, pod: KubeObject, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<PodRun> {
  const ns = pod.metadata.namespace!;
  const path = resourcePath('v1', 'Pod', ns, pod.metadata.name);
  // A name reused across attempts starts from scratch.
  await kube.delete(path, opts.signal);
  for (let i = 0; i < 30; i++) {
    try {
      await kube.get(path, opts.signal);
    } catch (error) {
      if (opts.signal?.aborted) throw error;
      break;
    }
    await sleep(500, opts.signal);
  }
  await kube.apply(pod, opts.signal);
  const deadline = Date.now() + opts.timeoutMs;
  let current: PodObject | undefined;
  while (Date.now() < deadline) {
    current = await kube.get<PodObject>(path, opts.signal);
    const phase = current.status?.phase ?? 'Pending';
    if (FINAL.has(phase)) {
      const exitCode = current.status?.containerStatuses?.[0]?.state?.terminated?.exitCode;
      return { phase, exitCode, logs: await kube.logs(ns, pod.metadata.name, opts.signal) };
    }
    // An image that is not in the node's store will never start: say so at once.
    const waiting = current.status?.containerStatuses?.[0]?.state?.waiting?.reason;
    if (waiting && /ErrImageNeverPull|InvalidImageName|CreateContainerConfigError/.test(waiting)) {
      return { phase, logs: '', problem: podProblem(current) };
    }
    await sleep(1000, opts.signal);
  }
  return { phase: current?.status?.phase ?? 'Unknown', logs: await kube.logs(ns, pod.metadata.name, opts.signal), problem: `not finished after ${Math.round(opts.timeoutMs / 1000)}s: ${current ? podProblem(current) ?? 'running' : 'never seen'}` };
}
