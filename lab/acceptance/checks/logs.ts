/** Logs: a line a test pod writes reaches the syslog listener the suite runs, tagged <namespace>/<pod>. */
import type { Check } from '../check.ts';
import type { ClusterCheckContext } from '../cluster/env.ts';
import type { SyslogListener } from '../cluster/host-side.ts';
import { isMissing } from '../cluster/maybe.ts';
import { BUSYBOX_IMAGE, renderProbePod } from '../cluster/objects.ts';
import { runPodToCompletion } from '../cluster/pods.ts';
import { envOf, fail, isOutcome, kubectl, podName, readyEnv } from './common.ts';

export const LOGS_CHECK: Check<ClusterCheckContext> = {
  id: 'logs-forwarded',
  skip: (ctx) => {
    const env = readyEnv(ctx);
    return env && isMissing(env.syslog) ? (env.syslog as { missing: string }).missing : undefined;
  },
  description: 'a line a test pod writes reaches the syslog listener the suite runs, tagged <namespace>/<pod>',
  timeoutMs: 3 * 60_000,
  retry: { attempts: 2, intervalMs: 2000 },
  hint: 'the command writes a line; watch the syslog target for it; check /etc/rsyslog.d/60-labsmith-containers.conf on the node and journalctl -u rsyslog',
  reproduce: (ctx) => kubectl(ctx, 'run', '-n', readyEnv(ctx)?.ns.plain ?? 'default', '--restart=Never', '--image-pull-policy=Never', '--image', BUSYBOX_IMAGE, 'logline', '--', 'echo', 'hello from labsmith'),
  async probe(ctx, signal) {
    const env = envOf(ctx);
    if (isOutcome(env)) return env;
    if (isMissing(env.syslog)) return fail((env.syslog as { missing: string }).missing, true);
    const listener = env.syslog as SyslogListener;
    const kube = env.kube;
    const token = `labsmith-e2e-${env.runId}-${Date.now()}`;
    const pod = renderProbePod({ name: podName(env, 'logline'), namespace: env.ns.plain, image: BUSYBOX_IMAGE, command: ['sh', '-c', `echo ${token}; sleep 2`] });
    const r = await runPodToCompletion(kube, pod, { timeoutMs: 90_000, signal });
    if (r.problem) return fail(`probe pod: ${r.problem}`);
    const got = await listener.waitFor((m) => m.message.includes(token), 60_000, signal);
    const expectedTag = `${env.ns.plain}/${pod.metadata.name}`;
    if (!got) return fail(`no line with ${token} within 60s (${listener.messages.length} other messages received)`);
    return { ok: got.tag === expectedTag, detail: `received tag ${got.tag} (expected ${expectedTag}): ${got.message.slice(0, 80)}` };
  },
};

