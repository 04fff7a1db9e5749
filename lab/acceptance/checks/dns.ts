/** DNS from a pod: CoreDNS resolves the API server's Service and the suite's own. */
import type { Check } from '../check.ts';
import type { ClusterCheckContext } from '../cluster/env.ts';
import { BUSYBOX_IMAGE, nslookupCommand, parseNslookup, renderProbePod } from '../cluster/objects.ts';
import { runPodToCompletion } from '../cluster/pods.ts';
import { envOf, isOutcome, kubectl, podName, readyEnv } from './common.ts';

export const DNS_IN_CLUSTER_CHECK: Check<ClusterCheckContext> = {
  id: 'coredns-resolves',
  description: 'CoreDNS resolves kubernetes.default.svc.<dnsDomain> and the suite\'s own Service from a pod',
  timeoutMs: 3 * 60_000,
  retry: { attempts: 3, intervalMs: 5000 },
  hint: 'check the CoreDNS pods; kubectl -n kube-system logs -l k8s-app=kube-dns',
  reproduce: (ctx) => {
    const env = readyEnv(ctx);
    return kubectl(ctx, 'run', '-n', env?.ns.plain ?? 'default', '--rm', '-it', '--restart=Never', '--image-pull-policy=Never', '--image', BUSYBOX_IMAGE, 'dns', '--', ...nslookupCommand(`kubernetes.default.svc.${ctx.dnsDomain}`, env?.kubeDnsIp ?? 'kube-dns.kube-system'));
  },
  async probe(ctx, signal) {
    const env = envOf(ctx);
    if (isOutcome(env)) return env;
    const kube = env.kube;
    const names: [string, string][] = [
      [`kubernetes.default.svc.${ctx.dnsDomain}`, env.kubernetesServiceIp],
      [`${env.echo.name}.${env.echo.namespace}.svc.${ctx.dnsDomain}`, env.echoServiceIp],
    ];
    const seen: string[] = [];
    let ok = true;
    for (const [name, expected] of names) {
      const r = await runPodToCompletion(kube, renderProbePod({ name: podName(env, 'dns'), namespace: env.ns.plain, image: BUSYBOX_IMAGE, command: nslookupCommand(name, env.kubeDnsIp) }), { timeoutMs: 90_000, signal });
      const { addresses } = parseNslookup(r.exitCode, r.logs, name);
      ok &&= addresses.includes(expected);
      seen.push(`${name} → ${addresses.join(', ') || r.problem || 'no answer'} (want ${expected})`);
    }
    return { ok, detail: seen.join('; ') };
  },
};

