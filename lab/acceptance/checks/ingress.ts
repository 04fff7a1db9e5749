/**
 * Ingress: Traefik's own 404 for a Host no router matches, through the host port and on the
 * NodePort, and a test Ingress answered by the echo pod that names itself.
 */
import { formatCommand } from '../../../core/exec.ts';
import { NODE_PORTS } from '../../../cloud-init/addons/bundle.ts';
import type { PodObject } from '../../kube/readiness.ts';
import { sshRun } from '../../ssh.ts';
import type { Check } from '../check.ts';
import type { ClusterCheckContext, SuiteEnv } from '../cluster/env.ts';
import { echoPodsPath } from '../cluster/objects.ts';
import { httpGet } from '../probes.ts';
import { clusterOf, envOf, isOutcome, readyEnv, remote, UNKNOWN_HOST } from './common.ts';

/** Traefik's own answer to a Host no router matches. */
const TRAEFIK_404_BODY = '404 page not found';

async function echoPodNames(env: SuiteEnv, signal: AbortSignal): Promise<string[]> {
  const pods = await env.kube.list<PodObject>(echoPodsPath(env.echo), signal);
  return pods.map((p) => p.metadata.name);
}

export const INGRESS_CHECKS: Check<ClusterCheckContext>[] = [
  {
    id: 'ingress-404-host-port',
    description: `through host port http, an unknown Host gets 404 from the ingress controller (Traefik's "${TRAEFIK_404_BODY}")`,
    timeoutMs: 60_000,
    retry: { attempts: 10, intervalMs: 3000 },
    hint: 'check the http forward and the traefik pods; a different 404 body means something else answers',
    reproduce: (ctx) => formatCommand('curl', ['-si', '-H', `Host: ${UNKNOWN_HOST}`, `http://${ctx.address}:${ctx.ports.http ?? 80}/`]),
    async probe(ctx, signal) {
      const kube = clusterOf(ctx);
      if (isOutcome(kube)) return kube;
      const r = await httpGet({ address: ctx.address, port: ctx.ports.http ?? 80, host: UNKNOWN_HOST, signal });
      return { ok: r.status === 404 && r.body.trim() === TRAEFIK_404_BODY, detail: `HTTP ${r.status}, body ${JSON.stringify(r.body.trim().slice(0, 60))}` };
    },
  },
  {
    id: 'ingress-404-node-port',
    description: `directly on the NodePort ${NODE_PORTS.http}, an unknown Host gets Traefik's 404`,
    timeoutMs: 60_000,
    retry: { attempts: 10, intervalMs: 3000 },
    hint: `the traefik Service must be type NodePort with nodePort ${NODE_PORTS.http}`,
    reproduce: (ctx) => (ctx.ssh ? remote(ctx, 'curl', '-si', '-H', `Host: ${UNKNOWN_HOST}`, `http://127.0.0.1:${NODE_PORTS.http}/`) : formatCommand('curl', ['-si', '-H', `Host: ${UNKNOWN_HOST}`, `http://${ctx.address}:${NODE_PORTS.http}/`])),
    async probe(ctx, signal) {
      const kube = clusterOf(ctx);
      if (isOutcome(kube)) return kube;
      let status: number;
      let body: string;
      if (ctx.ssh) {
        // The lab's NodePort is inside the VM: ask from the node itself.
        const r = await sshRun(ctx.ssh, ['curl', '-s', '-H', `Host: ${UNKNOWN_HOST}`, '-w', '\\n%{http_code}', `http://127.0.0.1:${NODE_PORTS.http}/`], { signal, allowFailure: true });
        const lines = r.stdout.trimEnd().split('\n');
        status = Number(lines.pop());
        body = lines.join('\n');
      } else {
        const r = await httpGet({ address: ctx.address, port: NODE_PORTS.http, host: UNKNOWN_HOST, signal });
        status = r.status;
        body = r.body;
      }
      return { ok: status === 404 && body.trim() === TRAEFIK_404_BODY, detail: `HTTP ${status}, body ${JSON.stringify(body.trim().slice(0, 60))}` };
    },
  },
  {
    id: 'ingress-route-200',
    description: 'a known host routed by a test Ingress gets 200 from the echo backend, which names the pod that answered',
    timeoutMs: 2 * 60_000,
    retry: { attempts: 20, intervalMs: 3000 },
    hint: 'check the Ingress, its Service endpoints, and that Traefik watches IngressClass traefik',
    reproduce: (ctx) => formatCommand('curl', ['-si', '-H', `Host: ${readyEnv(ctx)?.echoHost ?? `echo.${ctx.ingressDomain}`}`, `http://${ctx.address}:${ctx.ports.http ?? 80}/hostname`]),
    async probe(ctx, signal) {
      const env = envOf(ctx);
      if (isOutcome(env)) return env;
      const r = await httpGet({ address: ctx.address, port: ctx.ports.http ?? 80, host: env.echoHost, path: '/hostname', signal });
      const names = await echoPodNames(env, signal);
      return { ok: r.status === 200 && names.includes(r.body.trim()), detail: `HTTP ${r.status} from ${JSON.stringify(r.body.trim().slice(0, 63))}; echo pods: ${names.join(', ') || 'none'}` };
    },
  },
];

