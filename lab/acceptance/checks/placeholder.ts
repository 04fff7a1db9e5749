/**
 * An OS-only lab's placeholder ingress through the host forwards: plain HTTP, and HTTPS
 * verified against the lab CA. A lab with a cluster is checked by the ingress and TLS checks.
 */
import { formatCommand } from '../../../core/exec.ts';
import { PLACEHOLDER_SERVER_HEADER } from '../../../cloud-init/placeholder-ingress.ts';
import type { Check } from '../check.ts';
import type { AcceptanceContext } from '../context.ts';
import { httpGet, httpsGet } from '../probes.ts';
import { QUICK_RETRY, UNKNOWN_HOST } from './common.ts';

/** Only an OS-only lab runs the placeholder ingress; a cluster's ingress is checked by the cluster checks. */
export const PLACEHOLDER_CHECKS: Check<AcceptanceContext>[] = [
  {
    id: 'forward-http',
    description: 'host port http reaches the guest: unknown Host gets 404 (from the placeholder ingress)',
    timeoutMs: 30_000,
    retry: QUICK_RETRY,
    hint: 'check network.forwards.http and that the placeholder service runs: systemctl status labsmith-placeholder-ingress',
    reproduce: (ctx) => formatCommand('curl', ['-si', '-H', `Host: ${UNKNOWN_HOST}`, `http://${ctx.address}:${ctx.ports.http}/`]),
    skip: (ctx) => (ctx.ports.http ? undefined : 'no http forward configured'),
    async probe(ctx, signal) {
      const r = await httpGet({ address: ctx.address, port: ctx.ports.http!, host: UNKNOWN_HOST, signal });
      const server = String(r.headers.server ?? '');
      return { ok: r.status === 404 && server.startsWith(PLACEHOLDER_SERVER_HEADER), detail: `HTTP ${r.status}, Server: ${server || '(none)'}` };
    },
  },
  {
    id: 'forward-https',
    description: 'host port https reaches the guest over TLS verified against the lab CA: 404 (from the placeholder ingress)',
    timeoutMs: 30_000,
    retry: QUICK_RETRY,
    hint: 'check network.forwards.https; the certificate must chain to ca.crt in the lab directory',
    reproduce: (ctx) => formatCommand('curl', ['-si', '--cacert', `${ctx.stateDir ?? '.'}/ca.crt`, '--resolve', `${ctx.tlsName}:${ctx.ports.https}:${ctx.address}`, `https://${ctx.tlsName}:${ctx.ports.https}/`]),
    skip: (ctx) => (ctx.ports.https ? undefined : 'no https forward configured'),
    async probe(ctx, signal) {
      const r = await httpsGet({ address: ctx.address, port: ctx.ports.https!, host: ctx.tlsName, ca: ctx.caCert, signal });
      const server = String(r.headers.server ?? '');
      return {
        ok: r.status === 404 && server.startsWith(PLACEHOLDER_SERVER_HEADER),
        detail: `HTTP ${r.status}, Server: ${server || '(none)'}, certificate CN=${r.peer?.subject?.CN ?? '?'} issued by ${r.peer?.issuer?.CN ?? '?'}`,
      };
    },
  },
];

