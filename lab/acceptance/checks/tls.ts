/**
 * TLS: the chain through the host port verifies against the lab CA with the hostname, the
 * served certificate is the wildcard Certificate's (SAN, NotAfter, serverAuth, key), the
 * Certificate is Ready for its generation, and an unknown SNI gets the same default certificate.
 */
import { X509Certificate, createPublicKey } from 'node:crypto';
import { formatCommand } from '../../../core/exec.ts';
import { WILDCARD_SECRET } from '../../../cloud-init/addons/cert-manager.ts';
import { TRAEFIK_NAMESPACE } from '../../../cloud-init/addons/traefik.ts';
import { resourcePath, type KubeClient } from '../../kube/client.ts';
import { certificateVerdict, type CertificateObject } from '../../kube/readiness.ts';
import type { Check, ProbeOutcome } from '../check.ts';
import type { ClusterCheckContext } from '../cluster/env.ts';
import type { AcceptanceContext } from '../context.ts';
import { httpsGet } from '../probes.ts';
import { clusterOf, envOf, fail, isOutcome, kubectl, readyEnv, UNKNOWN_HOST } from './common.ts';

interface Served {
  cert: X509Certificate;
  fingerprint: string;
  status: number;
}

async function servedCertificate(ctx: AcceptanceContext, host: string, signal: AbortSignal, verifyName = true): Promise<Served> {
  const r = await httpsGet({ address: ctx.address, port: ctx.ports.https ?? 443, host, ca: ctx.caCert, signal, skipNameCheck: !verifyName });
  if (!r.peer?.raw) throw new Error('no certificate from the server');
  const cert = new X509Certificate(r.peer.raw);
  return { cert, fingerprint: cert.fingerprint256, status: r.status };
}

async function wildcardSecret(kube: KubeClient, signal: AbortSignal): Promise<{ cert: X509Certificate; keyPem: string }> {
  const secret = await kube.get<{ data: Record<string, string> }>(resourcePath('v1', 'Secret', TRAEFIK_NAMESPACE, WILDCARD_SECRET), signal);
  const pem = (k: string) => Buffer.from(secret.data[k] ?? '', 'base64').toString('utf8');
  return { cert: new X509Certificate(pem('tls.crt')), keyPem: pem('tls.key') };
}

export const TLS_CHECKS: Check<ClusterCheckContext>[] = [
  {
    id: 'tls-verifies',
    description: 'through host port https with SNI <name>.<lab domain>, the chain verifies against the lab CA with the hostname (no insecure flags)',
    timeoutMs: 2 * 60_000,
    retry: { attempts: 20, intervalMs: 3000 },
    hint: 'the wildcard Certificate must be Ready and be Traefik\'s default certificate; the CA is ca.crt in the lab directory',
    reproduce: (ctx) => {
      const host = readyEnv(ctx)?.echoHost ?? `echo.${ctx.ingressDomain}`;
      const port = ctx.ports.https ?? 443;
      return formatCommand('curl', ['-si', '--cacert', `${ctx.stateDir ?? '.'}/ca.crt`, '--resolve', `${host}:${port}:${ctx.address}`, `https://${host}:${port}/hostname`]);
    },
    async probe(ctx, signal) {
      const env = envOf(ctx);
      if (isOutcome(env)) return env;
      const s = await servedCertificate(ctx, env.echoHost, signal);
      return { ok: s.status === 200, detail: `HTTP ${s.status}; certificate ${s.cert.subject.replace(/\n/g, ', ')} issued by ${s.cert.issuer.replace(/\n/g, ', ')}` };
    },
  },
  {
    id: 'tls-matches-certificate',
    description: 'the served certificate is the wildcard Certificate\'s: SAN, NotAfter, serverAuth usage, and its key matches',
    timeoutMs: 60_000,
    retry: { attempts: 5, intervalMs: 3000 },
    hint: 'compare with kubectl -n traefik get certificate lab-wildcard -o yaml and the secret lab-wildcard-tls',
    reproduce: (ctx) => kubectl(ctx, '-n', TRAEFIK_NAMESPACE, 'get', 'certificate', 'lab-wildcard', '-o', 'yaml'),
    async probe(ctx, signal) {
      const env = envOf(ctx);
      if (isOutcome(env)) return env;
      const kube = env.kube;
      const served = await servedCertificate(ctx, env.echoHost, signal);
      const certificate = await kube.get<CertificateObject>(resourcePath('cert-manager.io/v1', 'Certificate', TRAEFIK_NAMESPACE, 'lab-wildcard'), signal);
      const secret = await wildcardSecret(kube, signal);
      return tlsMatches(served.cert, certificate, secret, ctx.ingressDomain);
    },
  },
  {
    id: 'tls-certificate-ready',
    description: 'the wildcard Certificate is Ready for its current generation',
    timeoutMs: 2 * 60_000,
    retry: { attempts: 20, intervalMs: 3000 },
    hint: 'kubectl describe certificate shows cert-manager\'s events; the CA ClusterIssuer must be Ready',
    reproduce: (ctx) => kubectl(ctx, '-n', TRAEFIK_NAMESPACE, 'describe', 'certificate', 'lab-wildcard'),
    async probe(ctx, signal) {
      const kube = clusterOf(ctx);
      if (isOutcome(kube)) return kube;
      return certificateVerdict(await kube.get<CertificateObject>(resourcePath('cert-manager.io/v1', 'Certificate', TRAEFIK_NAMESPACE, 'lab-wildcard'), signal));
    },
  },
  {
    id: 'tls-unknown-sni-default',
    description: 'an unknown SNI gets the default certificate (the lab wildcard, not Traefik\'s self-signed one)',
    timeoutMs: 60_000,
    retry: { attempts: 5, intervalMs: 3000 },
    hint: 'Traefik\'s default certificate comes from its file provider (/certs from the lab-wildcard-tls secret)',
    reproduce: (ctx) => formatCommand('openssl', ['s_client', '-connect', `${ctx.address}:${ctx.ports.https ?? 443}`, '-servername', UNKNOWN_HOST, '-CAfile', `${ctx.stateDir ?? '.'}/ca.crt`]),
    async probe(ctx, signal) {
      const kube = clusterOf(ctx);
      if (isOutcome(kube)) return kube;
      // Chain verification stays on; only the name check is off, since the name is unknown on purpose.
      const served = await servedCertificate(ctx, UNKNOWN_HOST, signal, false);
      const secret = await wildcardSecret(kube, signal);
      return { ok: served.fingerprint === secret.cert.fingerprint256, detail: `served ${served.cert.subjectAltName ?? served.cert.subject}; wildcard secret ${secret.cert.subjectAltName}` };
    },
  },
];

/** Pure: does the served certificate belong to the Certificate and its secret? */
export function tlsMatches(served: X509Certificate, certificate: CertificateObject, secret: { cert: X509Certificate; keyPem: string }, domain: string): ProbeOutcome {
  const problems: string[] = [];
  const sans = (served.subjectAltName ?? '').split(', ').map((s) => s.replace(/^DNS:/, ''));
  for (const name of certificate.spec?.dnsNames ?? [`*.${domain}`]) if (!sans.includes(name)) problems.push(`SAN ${name} missing (has ${sans.join(', ')})`);
  const notAfter = certificate.status?.notAfter ? Date.parse(certificate.status.notAfter) : NaN;
  if (Number.isNaN(notAfter) || Math.abs(Date.parse(served.validTo) - notAfter) > 1000) problems.push(`NotAfter ${served.validTo} ≠ Certificate status ${certificate.status?.notAfter ?? '(none)'}`);
  if (!(served.keyUsage ?? []).includes('1.3.6.1.5.5.7.3.1')) problems.push('no serverAuth extended key usage');
  if (served.fingerprint256 !== secret.cert.fingerprint256) problems.push('served certificate is not the one in the secret');
  const keyMatches = createPublicKey(secret.keyPem).export({ format: 'der', type: 'spki' }).equals(secret.cert.publicKey.export({ format: 'der', type: 'spki' }));
  if (!keyMatches) problems.push("the secret's key does not match its certificate");
  return problems.length ? fail(problems.join('; ')) : { ok: true, detail: `SAN ${sans.join(', ')}; NotAfter ${served.validTo}; serverAuth; key matches` };
}

