/**
 * The acceptance suite's own world in the cluster and on the host: set up before the cluster
 * checks, torn down after them (also when interrupted). Everything it creates carries the
 * suite's label and lives in two namespaces named after the run, so teardown is two deletes.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabError } from '../../../core/errors.ts';
import { sleep } from '../../../core/sleep.ts';
import { parseLogTarget } from '../../../cloud-init/user-data.ts';
import { resourcePath, type KubeClient } from '../../kube/client.ts';
import { podsVerdict, type PodObject } from '../../kube/readiness.ts';
import type { AcceptanceContext } from '../context.ts';
import { startPublicTarget, startSyslogListener, type PublicTarget, type SyslogListener } from './host-side.ts';
import { ECHO, renderEchoObjects, renderNamespace, renderSuitePolicies, suiteNamespaces, type SuiteNamespaces } from './objects.ts';

export type Maybe<T> = T | { missing: string };

export function isMissing<T extends object>(v: Maybe<T> | undefined): v is { missing: string } | undefined {
  return v === undefined || 'missing' in v;
}

export interface SuiteEnv {
  /** The cluster's API, as set-up found it. */
  kube: KubeClient;
  runId: string;
  ns: SuiteNamespaces;
  echoHost: string;
  echoPod: { name: string; ip: string };
  echoServiceIp: string;
  kubeDnsIp: string;
  kubernetesServiceIp: string;
  nodeIp: string;
  /** The host as the VM sees it (qemu: 10.0.2.2; libvirt: the network's gateway). */
  hostSide: Maybe<{ address: string }>;
  publicTarget: Maybe<PublicTarget>;
  syslog: Maybe<SyslogListener>;
  workDir: string;
}

export type ClusterCheckContext = AcceptanceContext & { env?: Maybe<SuiteEnv> };

async function waitForEcho(kube: KubeClient, ns: string, signal?: AbortSignal): Promise<PodObject> {
  const deadline = Date.now() + 4 * 60_000;
  let last = '';
  while (Date.now() < deadline) {
    const pods = await kube.list<PodObject>(`${resourcePath('v1', 'Pod', ns)}?labelSelector=app%3D${ECHO.name}`, signal);
    const verdict = podsVerdict(pods, ns);
    if (verdict.ok && pods[0]?.status?.podIP) return pods[0];
    last = verdict.detail;
    await sleep(2000, signal);
  }
  throw new LabError(`the suite's echo backend did not become ready: ${last}`, `is ${ECHO.name}'s image in the node's containerd store? kubectl -n ${ns} describe pod -l app=${ECHO.name}`);
}

function hostSideOf(ctx: AcceptanceContext): SuiteEnv['hostSide'] {
  if (ctx.driver === 'qemu') return { address: '10.0.2.2' };
  return { missing: ctx.driver ? `the host side of a ${ctx.driver} lab network is not known to the suite` : 'a server given by --host has no lab network' };
}

export async function setUpSuite(ctx: AcceptanceContext, signal?: AbortSignal): Promise<SuiteEnv> {
  if ('missing' in ctx.cluster) throw new LabError(ctx.cluster.missing);
  const kube = ctx.cluster.kube;
  const runId = randomBytes(3).toString('hex');
  const ns = suiteNamespaces(runId);
  const echoHost = `echo-${runId}.${ctx.ingressDomain}`;
  for (const n of [ns.plain, ns.egress]) await kube.apply(renderNamespace(n), signal);
  for (const obj of renderEchoObjects(ns.plain, echoHost)) await kube.apply(obj, signal);
  for (const obj of renderSuitePolicies(ns.egress)) await kube.apply(obj, signal);
  const echo = await waitForEcho(kube, ns.plain, signal);
  const serviceIp = async (namespace: string, name: string) => (await kube.get<{ spec: { clusterIP: string } }>(resourcePath('v1', 'Service', namespace, name), signal)).spec.clusterIP;
  const nodes = await kube.list<{ status?: { addresses?: { type: string; address: string }[] } }>('/api/v1/nodes', signal);
  const nodeIp = nodes[0]?.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;
  if (!nodeIp) throw new LabError('the node reports no InternalIP address');
  const workDir = await mkdtemp(join(tmpdir(), 'labsmith-e2e-'));

  let publicTarget: SuiteEnv['publicTarget'];
  if (!ctx.stateDir) publicTarget = { missing: 'the public target runs beside a lab; for a server given by --host it would have to be routed to this machine' };
  else if (process.getuid?.() !== 0) publicTarget = { missing: 'adding the documentation address to the host needs root' };
  else publicTarget = await startPublicTarget(workDir).catch((e: Error) => ({ missing: `could not start the public target: ${e.message}` }));

  let syslog: SuiteEnv['syslog'] = { missing: 'no addons.logTarget in lab.yaml: container logs are not forwarded' };
  if (ctx.logTarget) {
    const target = parseLogTarget(ctx.logTarget);
    if (target.protocol !== 'udp') syslog = { missing: `the suite listens on UDP; the log target is ${ctx.logTarget}` };
    else {
      // qemu's user network delivers the guest's 10.0.2.2 to the host's loopback.
      const bind = ctx.driver === 'qemu' && target.host === '10.0.2.2' ? '127.0.0.1' : target.host;
      syslog = await startSyslogListener(bind, target.port).catch((e: Error) => ({ missing: `cannot listen on udp ${bind}:${target.port}: ${e.message}` }));
    }
  }
  return {
    kube,
    runId,
    ns,
    echoHost,
    echoPod: { name: echo.metadata.name, ip: echo.status!.podIP! },
    echoServiceIp: await serviceIp(ns.plain, ECHO.name),
    kubeDnsIp: await serviceIp('kube-system', 'kube-dns'),
    kubernetesServiceIp: await serviceIp('default', 'kubernetes'),
    nodeIp,
    hostSide: hostSideOf(ctx),
    publicTarget,
    syslog,
    workDir,
  };
}

/** Deletes what the suite made; every part is attempted even when one fails. */
export async function tearDownSuite(ctx: AcceptanceContext, env: SuiteEnv): Promise<string[]> {
  const problems: string[] = [];
  const attempt = async (what: string, fn: () => Promise<unknown>) => fn().catch((e: Error) => problems.push(`${what}: ${e.message}`));
  if (!('missing' in ctx.cluster)) {
    const kube = ctx.cluster.kube;
    for (const n of [env.ns.egress, env.ns.plain]) await attempt(`namespace ${n}`, () => kube.delete(resourcePath('v1', 'Namespace', undefined, n)));
  }
  if (!isMissing(env.publicTarget)) await attempt('public target', () => (env.publicTarget as PublicTarget).close());
  if (!isMissing(env.syslog)) await attempt('syslog listener', () => (env.syslog as SyslogListener).close());
  await rm(env.workDir, { recursive: true, force: true });
  return problems;
}
