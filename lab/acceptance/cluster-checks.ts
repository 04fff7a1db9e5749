/**
 * Checks against the cluster: health, positive controls, ingress, TLS, the egress policy matrix,
 * log forwarding and storage. On an OS-only lab each reports `not ok` with the plain reason
 * (no Kubernetes in this image): nothing pretends. Every check names the command that shows the
 * same thing by hand.
 */
import { X509Certificate, createPublicKey } from 'node:crypto';
import { formatCommand } from '../../core/exec.ts';
import { BOOTSTRAP_PATHS } from '../../core/paths.ts';
import { WILDCARD_SECRET } from '../../cloud-init/addons/cert-manager.ts';
import { NODE_PORTS } from '../../cloud-init/addons/bundle.ts';
import { TRAEFIK_NAMESPACE } from '../../cloud-init/addons/traefik.ts';
import { resourcePath, type KubeClient } from '../kube/client.ts';
import { certificateVerdict, nodeVerdict, podsVerdict, type CertificateObject, type NodeObject, type PodObject } from '../kube/readiness.ts';
import { sshRun } from '../ssh.ts';
import { remote } from './os-checks.ts';
import type { Check, ProbeOutcome } from './check.ts';
import type { AcceptanceContext } from './context.ts';
import { isMissing, type ClusterCheckContext, type SuiteEnv } from './cluster/env.ts';
import type { PublicTarget, SyslogListener } from './cluster/host-side.ts';
import { AGNHOST_IMAGE, BUSYBOX_IMAGE, classifyConnect, connectCommand, ECHO, nslookupCommand, parseNslookup, POLICY_LABELS, renderClaim, renderProbePod, type ConnectOutcome } from './cluster/objects.ts';
import { runPodToCompletion } from './cluster/pods.ts';
import { httpGet, httpsGet } from './probes.ts';

/** The namespaces whose pods must all be Ready: the control plane, Calico, and every add-on. */
export const SYSTEM_NAMESPACES = ['kube-system', TRAEFIK_NAMESPACE, 'cert-manager', 'local-path-storage'] as const;
/** Traefik's own answer to a Host no router matches. */
export const TRAEFIK_404_BODY = '404 page not found';
export const UNKNOWN_HOST = 'unknown.labsmith.invalid';

const kubectl = (ctx: AcceptanceContext, ...args: string[]) => formatCommand('kubectl', ['--kubeconfig', 'missing' in ctx.cluster ? 'KUBECONFIG' : ctx.cluster.kubeconfig, ...args]);
const fail = (detail: string, final = false): ProbeOutcome => ({ ok: false, detail, final });

/** The cluster, or a final `not ok` saying why there is none. */
function clusterOf(ctx: AcceptanceContext): KubeClient | ProbeOutcome {
  return 'missing' in ctx.cluster ? fail(ctx.cluster.missing, true) : ctx.cluster.kube;
}

function envOf(ctx: ClusterCheckContext): SuiteEnv | ProbeOutcome {
  if ('missing' in ctx.cluster) return fail(ctx.cluster.missing, true);
  if (isMissing(ctx.env)) return fail(ctx.env?.missing ?? 'the suite set-up did not run', true);
  return ctx.env as SuiteEnv;
}

/** The suite's environment when its set-up succeeded. */
function readyEnv(ctx: ClusterCheckContext): SuiteEnv | undefined {
  return ctx.env && !isMissing(ctx.env) ? (ctx.env as SuiteEnv) : undefined;
}

const isOutcome = (v: unknown): v is ProbeOutcome => typeof v === 'object' && v !== null && 'ok' in v && 'detail' in v;

// --- health (also what lab:up waits for) ---

const nodeReady: Check<AcceptanceContext> = {
  id: 'node-ready',
  description: 'the node is Ready and schedulable (no NoSchedule taint: the single node runs workloads)',
  timeoutMs: 5 * 60_000,
  retry: { attempts: 60, intervalMs: 5000 },
  hint: 'describe the node for its conditions; the kubelet log: journalctl -u kubelet',
  reproduce: (ctx) => kubectl(ctx, 'get', 'nodes', '-o', 'wide'),
  async probe(ctx, signal) {
    const kube = clusterOf(ctx);
    if (isOutcome(kube)) return kube;
    return nodeVerdict(await kube.list<NodeObject>('/api/v1/nodes', signal));
  },
};

const systemPodsReady: Check<AcceptanceContext> = {
  id: 'system-pods-ready',
  description: `every pod in ${SYSTEM_NAMESPACES.join(', ')} is Ready (control plane, Calico, CoreDNS, ingress, cert-manager, storage)`,
  timeoutMs: 10 * 60_000,
  retry: { attempts: 120, intervalMs: 5000 },
  hint: 'the detail names the pods and why; kubectl describe pod shows their events',
  reproduce: (ctx) => kubectl(ctx, 'get', 'pods', '-A', '-o', 'wide'),
  async probe(ctx, signal) {
    const kube = clusterOf(ctx);
    if (isOutcome(kube)) return kube;
    const pods: PodObject[] = [];
    const empty: string[] = [];
    for (const ns of SYSTEM_NAMESPACES) {
      const items = await kube.list<PodObject>(resourcePath('v1', 'Pod', ns), signal);
      if (!items.length) empty.push(ns);
      pods.push(...items);
    }
    if (empty.length) return fail(`no pods in ${empty.join(', ')}: is that add-on installed?`);
    return podsVerdict(pods, SYSTEM_NAMESPACES.join(', '));
  },
};

/** From the node itself: lab:up's last word before it hands the cluster over. */
const corednsAnswersFromNode: Check<AcceptanceContext> = {
  id: 'coredns-answers',
  description: 'CoreDNS answers kubernetes.default.svc.<dnsDomain> on its Service address',
  timeoutMs: 5 * 60_000,
  retry: { attempts: 60, intervalMs: 5000 },
  hint: 'check the CoreDNS pods and their logs: kubectl -n kube-system logs -l k8s-app=kube-dns',
  reproduce: (ctx) => remote(ctx, 'python3', BOOTSTRAP_PATHS.dnsProbe, '$(kube-dns ClusterIP)', `kubernetes.default.svc.${ctx.dnsDomain}`),
  skip: (ctx) => (ctx.ssh ? undefined : 'no SSH access to the node (server given by --host): the in-cluster DNS check covers it'),
  async probe(ctx, signal) {
    const kube = clusterOf(ctx);
    if (isOutcome(kube)) return kube;
    const ip = (await kube.get<{ spec: { clusterIP: string } }>(resourcePath('v1', 'Service', 'kube-system', 'kube-dns'), signal)).spec.clusterIP;
    const name = `kubernetes.default.svc.${ctx.dnsDomain}`;
    const r = await sshRun(ctx.ssh!, ['python3', BOOTSTRAP_PATHS.dnsProbe, ip, name], { signal, allowFailure: true });
    return { ok: r.exitCode === 0, detail: r.exitCode === 0 ? `${name} → ${r.stdout.trim()} (from ${ip})` : `${name} via ${ip}: ${(r.stderr || r.stdout).trim()}` };
  },
};

export const CLUSTER_READY_CHECKS: Check<AcceptanceContext>[] = [nodeReady, systemPodsReady, corednsAnswersFromNode];

// --- probes in pods ---

let podCounter = 0;
const podName = (env: SuiteEnv, what: string) => `${what}-${env.runId}-${++podCounter}`.slice(0, 63);

async function connectFromPod(env: SuiteEnv, opts: { ns: string; labels?: Record<string, string>; host: string; port: number; what: string }, signal: AbortSignal): Promise<{ outcome: ConnectOutcome; detail: string }> {
  const pod = renderProbePod({ name: podName(env, opts.what), namespace: opts.ns, labels: opts.labels, image: AGNHOST_IMAGE, command: connectCommand(opts.host, opts.port) });
  const r = await runPodToCompletion(env.kube, pod, { timeoutMs: 90_000, signal });
  if (r.problem) return { outcome: 'unknown', detail: `probe pod ${pod.metadata.name}: ${r.problem}` };
  const outcome = classifyConnect(r.exitCode, r.logs);
  return { outcome, detail: `${opts.host}:${opts.port} → ${outcome}${r.logs.trim() ? ` (${r.logs.trim().split('\n').pop()})` : ''} [pod ${pod.metadata.name}]` };
}

type Expect = 'allowed' | 'blocked';

/** A policy drops: blocked means a timeout. A refusal or a connection means the packet got through. */
function verdictFor(expect: Expect, outcome: ConnectOutcome, detail: string): ProbeOutcome {
  if (outcome === 'unknown' || outcome === 'dns' || outcome === 'other') return fail(`inconclusive: ${detail}`);
  const passed = expect === 'allowed' ? outcome === 'connected' : outcome === 'timeout';
  return { ok: passed, detail: `expected ${expect}: ${detail}` };
}

const labelsFor = (set: LabelSet) => ({ ...(set.includes('dns') ? POLICY_LABELS.dns : {}), ...(set.includes('https') ? POLICY_LABELS.https : {}) });
type LabelSet = 'none' | 'dns' | 'https' | 'dns+https';
const LABEL_SETS: LabelSet[] = ['none', 'dns', 'https', 'dns+https'];

function connectCheck(spec: {
  id: string;
  description: string;
  expect: Expect;
  labels?: LabelSet;
  namespace: 'plain' | 'egress';
  target: (env: SuiteEnv) => { host: string; port: number } | ProbeOutcome;
  attempts?: number;
  /** A reason to skip, decided once the suite's environment is known (e.g. no public target without root). */
  skipWhen?: (env: SuiteEnv) => string | undefined;
}): Check<ClusterCheckContext> {
  return {
    skip: (ctx) => {
      const env = readyEnv(ctx);
      return spec.skipWhen && env ? spec.skipWhen(env) : undefined;
    },
    id: spec.id,
    description: spec.description,
    timeoutMs: 4 * 60_000,
    // Policies act at once: one probe decides. Retries only cover a probe pod that could not run.
    retry: { attempts: spec.attempts ?? 2, intervalMs: 2000 },
    hint: spec.expect === 'blocked' ? 'a connection or a refusal means the packet reached its target: check the NetworkPolicies in the namespace and that Calico enforces them' : 'check the target is up and that no policy selects the source pod',
    reproduce: (ctx) => {
      const env = readyEnv(ctx);
      const target = env && spec.target(env);
      const { host, port } = target && !isOutcome(target) ? target : { host: 'TARGET', port: 'PORT' };
      const labels = Object.entries(labelsFor(spec.labels ?? 'none')).map(([k, v]) => `${k}=${v}`).join(',') || 'probe=1';
      return kubectl(ctx, 'run', '-n', env ? env.ns[spec.namespace] : 'NAMESPACE', '--rm', '-it', '--restart=Never', '--image-pull-policy=Never', `--labels=${labels}`, '--image', AGNHOST_IMAGE, 'probe', '--', ...connectCommand(host, port).slice(1));
    },
    async probe(ctx, signal) {
      const env = envOf(ctx);
      if (isOutcome(env)) return env;
      const target = spec.target(env);
      if (isOutcome(target)) return target;
      const { outcome, detail } = await connectFromPod(env, { ns: env.ns[spec.namespace], labels: labelsFor(spec.labels ?? 'none'), host: target.host, port: target.port, what: spec.id }, signal);
      const v = verdictFor(spec.expect, outcome, detail);
      // A wrong answer is an answer: retrying would only hide a first-packet leak.
      return outcome === 'unknown' ? v : { ...v, final: true };
    },
  };
}

function publicTarget(env: SuiteEnv, port: 'httpsPort' | 'httpPort'): { host: string; port: number } | ProbeOutcome {
  if (isMissing(env.publicTarget)) return fail((env.publicTarget as { missing: string }).missing, true);
  const t = env.publicTarget as PublicTarget;
  return { host: t.address, port: t[port] };
}

function dnsCheck(set: LabelSet): Check<ClusterCheckContext> {
  const expect: Expect = set.includes('dns') ? 'allowed' : 'blocked';
  return {
    id: `egress-dns-udp-${set}`,
    description: `egress: a pod labelled ${set} ${expect === 'allowed' ? 'resolves names through' : 'cannot reach'} kube-dns over UDP 53`,
    timeoutMs: 4 * 60_000,
    retry: { attempts: 2, intervalMs: 2000 },
    hint: 'the egress-dns policy allows UDP and TCP 53 to kube-dns for pods labelled egress-dns: "true"',
    reproduce: (ctx) => kubectl(ctx, 'run', '--rm', '-it', '--restart=Never', '--image-pull-policy=Never', '--image', BUSYBOX_IMAGE, 'probe', '--', ...nslookupCommand(`kubernetes.default.svc.${ctx.dnsDomain}`, 'KUBE_DNS_IP')),
    async probe(ctx, signal) {
      const env = envOf(ctx);
      if (isOutcome(env)) return env;
      const kube = env.kube;
      const name = `kubernetes.default.svc.${ctx.dnsDomain}`;
      const pod = renderProbePod({ name: podName(env, `dns-${set.replace('+', '-')}`), namespace: env.ns.egress, labels: labelsFor(set), image: BUSYBOX_IMAGE, command: nslookupCommand(name, env.kubeDnsIp) });
      const r = await runPodToCompletion(kube, pod, { timeoutMs: 90_000, signal });
      if (r.problem) return fail(`probe pod ${pod.metadata.name}: ${r.problem}`);
      const { answered, addresses } = parseNslookup(r.exitCode, r.logs, name);
      const ok = expect === 'allowed' ? answered && addresses.includes(env.kubernetesServiceIp) : !answered;
      return { ok, final: true, detail: `expected ${expect}: ${answered ? `answered ${addresses.join(', ')}` : `no answer (${r.logs.trim().split('\n').pop() ?? `exit ${r.exitCode}`})`} [pod ${pod.metadata.name}]` };
    },
  };
}

// --- ingress and TLS ---

async function echoPodNames(env: SuiteEnv, signal: AbortSignal): Promise<string[]> {
  const pods = await env.kube.list<PodObject>(`${resourcePath('v1', 'Pod', env.ns.plain)}?labelSelector=app%3D${ECHO.name}`, signal);
  return pods.map((p) => p.metadata.name);
}

const ingressChecks: Check<ClusterCheckContext>[] = [
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
    reproduce: (ctx) => (ctx.ssh ? remote(ctx, 'curl', '-si', '-H', `'Host: ${UNKNOWN_HOST}'`, `http://127.0.0.1:${NODE_PORTS.http}/`) : formatCommand('curl', ['-si', '-H', `Host: ${UNKNOWN_HOST}`, `http://${ctx.address}:${NODE_PORTS.http}/`])),
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
    reproduce: (ctx) => formatCommand('curl', ['-si', '-H', 'Host: ECHO_HOST', `http://${ctx.address}:${ctx.ports.http ?? 80}/hostname`]),
    async probe(ctx, signal) {
      const env = envOf(ctx);
      if (isOutcome(env)) return env;
      const r = await httpGet({ address: ctx.address, port: ctx.ports.http ?? 80, host: env.echoHost, path: '/hostname', signal });
      const names = await echoPodNames(env, signal);
      return { ok: r.status === 200 && names.includes(r.body.trim()), detail: `HTTP ${r.status} from ${JSON.stringify(r.body.trim().slice(0, 63))}; echo pods: ${names.join(', ') || 'none'}` };
    },
  },
];

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

const tlsChecks: Check<ClusterCheckContext>[] = [
  {
    id: 'tls-verifies',
    description: 'through host port https with SNI <name>.<lab domain>, the chain verifies against the lab CA with the hostname (no insecure flags)',
    timeoutMs: 2 * 60_000,
    retry: { attempts: 20, intervalMs: 3000 },
    hint: 'the wildcard Certificate must be Ready and be Traefik\'s default certificate; the CA is ca.crt in the lab directory',
    reproduce: (ctx) => formatCommand('curl', ['-si', '--cacert', `${ctx.stateDir ?? '.'}/ca.crt`, '--resolve', `ECHO_HOST:${ctx.ports.https ?? 443}:${ctx.address}`, `https://ECHO_HOST:${ctx.ports.https ?? 443}/hostname`]),
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

// --- egress matrix ---

const blocked443: { id: string; what: string; target: (env: SuiteEnv) => { host: string; port: number } | ProbeOutcome }[] = [
  { id: 'host-side', what: 'the host side of the lab network', target: (env) => (isMissing(env.hostSide) ? fail((env.hostSide as { missing: string }).missing, true) : { host: (env.hostSide as { address: string }).address, port: 443 }) },
  { id: 'pod', what: 'a pod', target: (env) => ({ host: env.echoPod.ip, port: 443 }) },
  { id: 'service', what: 'a Service IP (the API server\'s)', target: (env) => ({ host: env.kubernetesServiceIp, port: 443 }) },
  { id: 'node', what: 'the node', target: (env) => ({ host: env.nodeIp, port: 443 }) },
  { id: 'metadata', what: '169.254.169.254 (cloud metadata)', target: () => ({ host: '169.254.169.254', port: 443 }) },
];

const needsPublicTarget = (env: SuiteEnv) => (isMissing(env.publicTarget) ? (env.publicTarget as { missing: string }).missing : undefined);
const needsHostSide = (env: SuiteEnv) => (isMissing(env.hostSide) ? (env.hostSide as { missing: string }).missing : undefined);

const egressChecks: Check<ClusterCheckContext>[] = [
  connectCheck({ id: 'control-pod-to-pod', description: 'positive control: pod → pod traffic works where no policy applies', expect: 'allowed', namespace: 'plain', target: (env) => ({ host: env.echoPod.ip, port: ECHO.port }), attempts: 3 }),
  connectCheck({ id: 'control-pod-to-service', description: 'positive control: pod → Service traffic works where no policy applies', expect: 'allowed', namespace: 'plain', target: (env) => ({ host: env.echoServiceIp, port: ECHO.servicePort }), attempts: 3 }),
  ...LABEL_SETS.map(dnsCheck),
  ...LABEL_SETS.map((set) =>
    connectCheck({
      id: `egress-dns-tcp-${set.replace('+', '-')}`,
      description: `egress: a pod labelled ${set} ${set.includes('dns') ? 'reaches' : 'cannot reach'} kube-dns over TCP 53`,
      expect: set.includes('dns') ? 'allowed' : 'blocked',
      labels: set,
      namespace: 'egress',
      target: (env) => ({ host: env.kubeDnsIp, port: 53 }),
    }),
  ),
  ...LABEL_SETS.map((set) =>
    connectCheck({
      id: `egress-public-443-${set.replace('+', '-')}`,
      description: `egress: a pod labelled ${set} ${set.includes('https') ? 'reaches' : 'cannot reach'} the public target on TCP 443`,
      expect: set.includes('https') ? 'allowed' : 'blocked',
      labels: set,
      namespace: 'egress',
      target: (env) => publicTarget(env, 'httpsPort'),
      skipWhen: needsPublicTarget,
    }),
  ),
  connectCheck({ id: 'egress-public-80-blocked', description: 'egress: egress-https allows 443 only: TCP 80 to the public target is blocked', expect: 'blocked', labels: 'dns+https', namespace: 'egress', target: (env) => publicTarget(env, 'httpPort'), skipWhen: needsPublicTarget }),
  ...blocked443.map((b) =>
    connectCheck({ id: `egress-private-${b.id}-blocked`, description: `egress: egress-https excludes private ranges: TCP 443 to ${b.what} is blocked`, expect: 'blocked', labels: 'dns+https', namespace: 'egress', target: b.target, skipWhen: b.id === 'host-side' ? needsHostSide : undefined }),
  ),
  connectCheck({ id: 'egress-first-packet', description: 'egress: a new pod under default-deny is blocked on its very first attempt (one try, no retry)', expect: 'blocked', labels: 'none', namespace: 'egress', target: (env) => publicTarget(env, 'httpsPort'), attempts: 1, skipWhen: needsPublicTarget }),
  {
    id: 'egress-policy-delete-restores',
    description: 'egress: deleting the default-deny policy restores an unlabelled pod\'s connectivity to the public target',
    timeoutMs: 4 * 60_000,
    retry: { attempts: 6, intervalMs: 5000 },
    hint: 'if it stays blocked, another policy selects the pod, or Calico did not remove the rule',
    reproduce: (ctx) => kubectl(ctx, '-n', 'EGRESS_NAMESPACE', 'delete', 'networkpolicy', 'default-deny-egress'),
    skip: (ctx) => {
      const env = readyEnv(ctx);
      return env ? needsPublicTarget(env) : undefined;
    },
    async probe(ctx, signal) {
      const env = envOf(ctx);
      if (isOutcome(env)) return env;
      const target = publicTarget(env, 'httpsPort');
      if (isOutcome(target)) return target;
      const kube = env.kube;
      await kube.delete(resourcePath('networking.k8s.io/v1', 'NetworkPolicy', env.ns.egress, 'default-deny-egress'), signal);
      const { outcome, detail } = await connectFromPod(env, { ns: env.ns.egress, host: target.host, port: target.port, what: 'after-delete' }, signal);
      return verdictFor('allowed', outcome, detail);
    },
  },
];

// --- logs and storage ---

const logsCheck: Check<ClusterCheckContext> = {
  id: 'logs-forwarded',
  skip: (ctx) => {
    const env = readyEnv(ctx);
    return env && isMissing(env.syslog) ? (env.syslog as { missing: string }).missing : undefined;
  },
  description: 'a line a test pod writes reaches the syslog listener the suite runs, tagged <namespace>/<pod>',
  timeoutMs: 3 * 60_000,
  retry: { attempts: 2, intervalMs: 2000 },
  hint: 'check /etc/rsyslog.d/60-labsmith-containers.conf on the node and journalctl -u rsyslog',
  reproduce: (ctx) => `${kubectl(ctx, 'run', '--restart=Never', '--image-pull-policy=Never', '--image', BUSYBOX_IMAGE, 'logline', '--', 'echo', 'hello')}; then watch the syslog target ${ctx.logTarget ?? '(none set)'}`,
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

const storageCheck: Check<ClusterCheckContext> = {
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

const corednsInCluster: Check<ClusterCheckContext> = {
  id: 'coredns-resolves',
  description: 'CoreDNS resolves kubernetes.default.svc.<dnsDomain> and the suite\'s own Service from a pod',
  timeoutMs: 3 * 60_000,
  retry: { attempts: 3, intervalMs: 5000 },
  hint: 'check the CoreDNS pods; kubectl -n kube-system logs -l k8s-app=kube-dns',
  reproduce: (ctx) => kubectl(ctx, 'run', '--rm', '-it', '--restart=Never', '--image-pull-policy=Never', '--image', BUSYBOX_IMAGE, 'dns', '--', 'nslookup', `kubernetes.default.svc.${ctx.dnsDomain}`),
  async probe(ctx, signal) {
    const env = envOf(ctx);
    if (isOutcome(env)) return env;
    const kube = env.kube;
    const names: [string, string][] = [
      [`kubernetes.default.svc.${ctx.dnsDomain}`, env.kubernetesServiceIp],
      [`${ECHO.name}.${env.ns.plain}.svc.${ctx.dnsDomain}`, env.echoServiceIp],
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

/** In order: health first, positive controls before any blocked result, the policy deletion last. */
export const CLUSTER_CHECKS: Check<ClusterCheckContext>[] = [nodeReady, systemPodsReady, corednsInCluster, ...ingressChecks, ...tlsChecks, ...egressChecks.slice(0, 2), storageCheck, logsCheck, ...egressChecks.slice(2)];
