/**
 * Verdicts on Kubernetes API objects (pure): node Ready and schedulable, pods Ready (with the
 * reason when not), a Certificate Ready for its current generation. Each
 * returns ok plus one line a person can act on.
 */

export interface Verdict {
  ok: boolean;
  detail: string;
}

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  observedGeneration?: number;
}

export interface NodeObject {
  metadata: { name: string };
  spec?: { unschedulable?: boolean; taints?: { key: string; effect: string; value?: string }[] };
  status?: { conditions?: Condition[]; nodeInfo?: { kubeletVersion?: string; containerRuntimeVersion?: string } };
}

export interface ContainerStatus {
  name: string;
  ready: boolean;
  restartCount?: number;
  state?: { waiting?: { reason?: string; message?: string }; terminated?: { exitCode?: number; reason?: string } };
}

export interface PodObject {
  metadata: { name: string; namespace?: string; deletionTimestamp?: string; ownerReferences?: { kind: string }[] };
  status?: { phase?: string; podIP?: string; conditions?: Condition[]; containerStatuses?: ContainerStatus[]; initContainerStatuses?: ContainerStatus[] };
}

export interface CertificateObject {
  metadata: { name: string; namespace?: string; generation?: number };
  spec?: { dnsNames?: string[]; secretName?: string };
  status?: { conditions?: Condition[]; notAfter?: string; renewalTime?: string };
}

export interface EventObject {
  type?: string;
  reason?: string;
  message?: string;
  involvedObject?: { kind?: string; name?: string; namespace?: string };
  count?: number;
  lastTimestamp?: string;
  eventTime?: string;
}

const condition = (conditions: Condition[] | undefined, type: string) => conditions?.find((c) => c.type === type);

export function nodeVerdict(nodes: NodeObject[]): Verdict {
  if (nodes.length === 0) return { ok: false, detail: 'no nodes registered' };
  const problems: string[] = [];
  for (const node of nodes) {
    const ready = condition(node.status?.conditions, 'Ready');
    if (ready?.status !== 'True') problems.push(`${node.metadata.name} not Ready (${ready?.reason ?? 'no Ready condition'}${ready?.message ? `: ${ready.message}` : ''})`);
    if (node.spec?.unschedulable) problems.push(`${node.metadata.name} is cordoned`);
    const blocking = (node.spec?.taints ?? []).filter((t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute');
    if (blocking.length) problems.push(`${node.metadata.name} has taints ${blocking.map((t) => `${t.key}:${t.effect}`).join(', ')}`);
  }
  if (problems.length) return { ok: false, detail: problems.join('; ') };
  const info = nodes[0]!.status?.nodeInfo;
  return { ok: true, detail: `${nodes.map((n) => n.metadata.name).join(', ')} Ready and schedulable${info ? ` (kubelet ${info.kubeletVersion}, ${info.containerRuntimeVersion})` : ''}` };
}

/** Why one pod is not ready, in the words `kubectl get pods` would use. */
export function podProblem(pod: PodObject): string | undefined {
  const phase = pod.status?.phase ?? 'Unknown';
  if (phase === 'Succeeded') return undefined;
  if (pod.metadata.deletionTimestamp) return 'Terminating';
  const waiting = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])].find((c) => c.state?.waiting?.reason);
  const ready = condition(pod.status?.conditions, 'Ready');
  if (phase === 'Running' && ready?.status === 'True') return undefined;
  if (waiting) return `${waiting.state!.waiting!.reason}${waiting.state!.waiting!.message ? `: ${waiting.state!.waiting!.message.slice(0, 120)}` : ''}`;
  const scheduled = condition(pod.status?.conditions, 'PodScheduled');
  if (scheduled?.status === 'False') return `Unschedulable: ${scheduled.message ?? scheduled.reason ?? ''}`.trim();
  return `${phase}${ready?.reason ? ` (${ready.reason})` : ''}`;
}

export function podsVerdict(pods: PodObject[], what: string): Verdict {
  if (pods.length === 0) return { ok: false, detail: `no pods in ${what}` };
  const notReady = pods.map((p) => [p, podProblem(p)] as const).filter(([, problem]) => problem);
  if (notReady.length) return { ok: false, detail: `${notReady.length}/${pods.length} pods in ${what} not Ready: ${notReady.map(([p, why]) => `${p.metadata.namespace ? `${p.metadata.namespace}/` : ''}${p.metadata.name} ${why}`).join('; ')}` };
  return { ok: true, detail: `${pods.length} pods in ${what} Ready` };
}

export function certificateVerdict(cert: CertificateObject): Verdict {
  const ready = condition(cert.status?.conditions, 'Ready');
  const name = `${cert.metadata.namespace}/${cert.metadata.name}`;
  if (ready?.status !== 'True') return { ok: false, detail: `${name} not Ready: ${ready?.reason ?? 'no Ready condition'}${ready?.message ? ` (${ready.message})` : ''}` };
  if (cert.metadata.generation !== undefined && ready.observedGeneration !== cert.metadata.generation) {
    return { ok: false, detail: `${name} Ready is for generation ${ready.observedGeneration}, the spec is generation ${cert.metadata.generation}` };
  }
  return { ok: true, detail: `${name} Ready (generation ${cert.metadata.generation ?? '?'}), notAfter ${cert.status?.notAfter ?? '?'}` };
}

