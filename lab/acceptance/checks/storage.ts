/** Storage: a PVC binds on the default StorageClass; one pod writes a file, another reads it back. */
import { resourcePath } from '../../kube/client.ts';
import type { Check } from '../check.ts';
import type { ClusterCheckContext } from '../cluster/env.ts';
import { BUSYBOX_IMAGE, renderClaim, renderProbePod } from '../cluster/objects.ts';
import { runPodToCompletion } from '../cluster/pods.ts';
import { envOf, fail, isOutcome, kubectl, podName } from './common.ts';

export const STORAGE_CHECK: Check<ClusterCheckContext> = {
  id: 'storage-pvc',
  description: 'a PVC binds on the default StorageClass; one pod writes a file, another reads it back',
  timeoutMs: 4 * 60_000,
  retry: { attempts: 2, intervalMs: 5000 },
  hint: 'check the local-path-provisioner pod and that local-path is the default StorageClass',
  reproduce: (ctx) => kubectl(ctx, 'get', 'storageclass,pvc', '-A'),
  async probe(ctx, signal) {
    const env = envOf(ctx);
    if (isOutcome(env)) return env;
    const kube = env.kube;
    const claim = renderClaim(env.ns.plain, `data-${env.runId}`);
    await kube.apply(claim, signal);
    const token = `written-by-${env.runId}`;
    const volumes = [{ name: 'data', claim: claim.metadata.name, mountPath: '/data' }];
    const writer = await runPodToCompletion(kube, renderProbePod({ name: podName(env, 'writer'), namespace: env.ns.plain, image: BUSYBOX_IMAGE, command: ['sh', '-c', `echo ${token} > /data/probe && sync`], volumes }), { timeoutMs: 120_000, signal });
    if (writer.problem || writer.exitCode !== 0) return fail(`writer: ${writer.problem ?? `exit ${writer.exitCode}: ${writer.logs.trim()}`}`);
    const pvc = await kube.get<{ status?: { phase?: string }; spec?: { storageClassName?: string } }>(resourcePath('v1', 'PersistentVolumeClaim', env.ns.plain, claim.metadata.name), signal);
    const reader = await runPodToCompletion(kube, renderProbePod({ name: podName(env, 'reader'), namespace: env.ns.plain, image: BUSYBOX_IMAGE, command: ['cat', '/data/probe'], volumes }), { timeoutMs: 120_000, signal });
    const read = reader.logs.trim();
    return { ok: pvc.status?.phase === 'Bound' && read === token, detail: `PVC ${pvc.status?.phase ?? '?'} on ${pvc.spec?.storageClassName ?? '(no class)'}; read back ${JSON.stringify(read.slice(0, 60))}` };
  },
};

