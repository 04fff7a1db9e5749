/**
 * Egress: positive controls first (pod → pod and pod → Service where no policy applies), then
 * the production policies' matrix in the suite's egress namespace (no label / egress-dns /
 * egress-https / both; DNS over UDP and TCP, 443 and 80 to the public target, 443 to private
 * targets and cloud metadata), the very first packet under default-deny, and policy deletion.
 * A policy drops packets: blocked means a timeout; a refusal or a connection got through.
 */
import { resourcePath } from '../../kube/client.ts';
import type { Check, ProbeOutcome } from '../check.ts';
import type { ClusterCheckContext, SuiteEnv } from '../cluster/env.ts';
import type { PublicTarget } from '../cluster/host-side.ts';
import { isMissing } from '../cluster/maybe.ts';
import { AGNHOST_IMAGE, BUSYBOX_IMAGE, classifyConnect, connectCommand, ECHO, nslookupCommand, parseNslookup, POLICY_LABELS, renderProbePod, type ConnectOutcome } from '../cluster/objects.ts';
import { runPodToCompletion } from '../cluster/pods.ts';
import { envOf, fail, isOutcome, kubectl, podName, readyEnv } from './common.ts';

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

/** `kubectl run --labels`: the policy labels of the set, or a neutral one. */
const renderLabels = (set: LabelSet) => Object.entries(labelsFor(set)).map(([k, v]) => `${k}=${v}`).join(',') || 'probe=1';
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
      return kubectl(ctx, 'run', '-n', env ? env.ns[spec.namespace] : 'default', '--rm', '-it', '--restart=Never', '--image-pull-policy=Never', `--labels=${renderLabels(spec.labels ?? 'none')}`, '--image', AGNHOST_IMAGE, 'probe', '--', ...connectCommand(host, port).slice(1));
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
    reproduce: (ctx) => {
      const env = readyEnv(ctx);
      return kubectl(ctx, 'run', '-n', env?.ns.egress ?? 'default', '--rm', '-it', '--restart=Never', '--image-pull-policy=Never', `--labels=${renderLabels(set)}`, '--image', BUSYBOX_IMAGE, 'probe', '--', ...nslookupCommand(`kubernetes.default.svc.${ctx.dnsDomain}`, env?.kubeDnsIp ?? 'kube-dns.kube-system'));
    },
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

const blocked443: { id: string; what: string; target: (env: SuiteEnv) => { host: string; port: number } | ProbeOutcome }[] = [
  { id: 'host-side', what: 'the host side of the lab network', target: (env) => (isMissing(env.hostSide) ? fail((env.hostSide as { missing: string }).missing, true) : { host: (env.hostSide as { address: string }).address, port: 443 }) },
  { id: 'pod', what: 'a pod', target: (env) => ({ host: env.echoPod.ip, port: 443 }) },
  { id: 'service', what: 'a Service IP (the API server\'s)', target: (env) => ({ host: env.kubernetesServiceIp, port: 443 }) },
  { id: 'node', what: 'the node', target: (env) => ({ host: env.nodeIp, port: 443 }) },
  { id: 'metadata', what: '169.254.169.254 (cloud metadata)', target: () => ({ host: '169.254.169.254', port: 443 }) },
];

const needsPublicTarget = (env: SuiteEnv) => (isMissing(env.publicTarget) ? (env.publicTarget as { missing: string }).missing : undefined);
const needsHostSide = (env: SuiteEnv) => (isMissing(env.hostSide) ? (env.hostSide as { missing: string }).missing : undefined);

/** In order: the two positive controls, then the matrix, the policy deletion last. */
export const EGRESS_CHECKS: Check<ClusterCheckContext>[] = [
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
    reproduce: (ctx) => kubectl(ctx, '-n', readyEnv(ctx)?.ns.egress ?? 'default', 'delete', 'networkpolicy', 'default-deny-egress'),
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

