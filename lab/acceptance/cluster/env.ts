/**
 * The acceptance suite's own world in the cluster and on the host: set up before the cluster
 * checks, torn down after them (also when interrupted). Everything it creates carries the
 * suite's label. Most of it lives in two namespaces named after the run; the echo backend lives
 * in the namespace Traefik serves for the suite (shared, made by the cluster bootstrap), under
 * run-suffixed names, and teardown deletes exactly those objects, never that namespace.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CancelledError, LabError } from '../../../core/errors.ts';
import { sleep } from '../../../core/sleep.ts';
import { parseLogTarget } from '../../../cloud-init/user-data.ts';
import { KubeApiError, resourcePath, type KubeClient } from '../../kube/client.ts';
import { podsVerdict, type PodObject } from '../../kube/readiness.ts';
import type { AcceptanceContext } from '../context.ts';
import { startPublicTarget, startSyslogListener, type PublicTarget, type SyslogListener } from './host-side.ts';
import { isMissing, type Maybe } from './maybe.ts';
import { echoPodsPath, echoRef, renderEchoObjects, renderNamespace, renderSuitePolicies, suiteNamespaces, type EchoRef, type SuiteNamespaces } from './objects.ts';

export { isMissing, type Maybe };

export interface SuiteEnv {
  /** The cluster's API, as set-up found it. */
  kube: KubeClient;
  runId: string;
  ns: SuiteNamespaces;
  /** This run's echo Deployment, Service and Ingress (in ns.ingress). */
  echo: EchoRef;
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
  /** What set-up made, oldest first: teardown undoes it newest first. */
  undos: Undo[];
}

export type ClusterCheckContext = AcceptanceContext & { env?: Maybe<SuiteEnv> };

async function waitForEcho(kube: KubeClient, echo: EchoRef, signal?: AbortSignal): Promise<PodObject> {
  const deadline = Date.now() + 4 * 60_000;
  let last = '';
  while (Date.now() < deadline) {
    const pods = await kube.list<PodObject>(echoPodsPath(echo), signal);
    const verdict = podsVerdict(pods, echo.namespace);
    if (verdict.ok && pods[0]?.status?.podIP) return pods[0];
    last = verdict.detail;
    await sleep(2000, signal);
  }
  throw new LabError(`the suite's echo backend did not become ready: ${last}`, `is ${echo.name}'s image in the node's containerd store? kubectl -n ${echo.namespace} describe pod -l ${echo.labelSelector}`);
}

/** The suite only uses the ingress namespace: a cluster without it was bootstrapped by an older labsmith. */
async function requireIngressNamespace(kube: KubeClient, name: string, signal?: AbortSignal): Promise<void> {
  try {
    await kube.get(resourcePath('v1', 'Namespace', undefined, name), signal);
  } catch (error) {
    if (error instanceof KubeApiError && error.status === 404) {
      throw new LabError(`namespace ${name} is missing: Traefik serves the suite's Ingress only there`, `the cluster bootstrap makes it with Traefik's add-on (50-traefik.yaml); rebuild the lab, or apply that add-on again`);
    }
    throw error;
  }
}

function hostSideOf(ctx: AcceptanceContext): SuiteEnv['hostSide'] {
  if (ctx.driver === 'qemu') return { address: '10.0.2.2' };
  return { missing: ctx.driver ? `the host side of a ${ctx.driver} lab network is not known to the suite` : 'a server given by --host has no lab network' };
}

export interface SetUpOptions {
  signal?: AbortSignal;
  /** Where the public target listens (default: 198.51.100.10, ports 443 and 80). */
  publicTarget?: { address?: string; httpsPort?: number; httpPort?: number };
  /** Told after each thing the set-up makes (the suite writes them as TAP comments). */
  onMade?: (what: string) => void;
}

/** A set-up that failed half-way: what it made is removed; `leftovers` names what could not be. */
export class SetUpError extends LabError {
  constructor(
    override readonly cause: unknown,
    readonly leftovers: string[],
  ) {
    super(cause instanceof Error ? cause.message : String(cause), cause instanceof LabError ? cause.hint : undefined, cause instanceof LabError ? cause.exitCode : 1);
  }
}

interface Undo {
  what: string;
  undo: () => Promise<unknown>;
}

/**
 * Makes the suite's namespaces, echo backend, policies and host-side listeners. Each thing made
 * registers its undo first; when a later part fails or `signal` aborts, everything made so far
 * is removed (newest first) before the error goes on.
 */
export async function setUpSuite(ctx: AcceptanceContext, opts: SetUpOptions = {}): Promise<SuiteEnv> {
  if ('missing' in ctx.cluster) throw new LabError(ctx.cluster.missing);
  const { signal } = opts;
  const kube = ctx.cluster.kube;
  const undos: Undo[] = [];
  const made = (what: string, undo: () => Promise<unknown>) => {
    undos.push({ what, undo });
    opts.onMade?.(what);
  };
  try {
    const runId = randomBytes(3).toString('hex');
    const ns = suiteNamespaces(runId);
    const echo = echoRef(runId);
    const echoHost = `${echo.name}.${ctx.ingressDomain}`;
    for (const n of [ns.plain, ns.egress]) {
      // Registered before the request: a namespace the server made before we were cut off still goes.
      undos.push({ what: `namespace ${n}`, undo: () => kube.delete(resourcePath('v1', 'Namespace', undefined, n)) });
      await kube.apply(renderNamespace(n), signal);
      opts.onMade?.(`namespace ${n}`);
    }
    await requireIngressNamespace(kube, ns.ingress, signal);
    for (const obj of renderEchoObjects(echo, echoHost)) {
      // By name, never the namespace: it is shared with other runs and holds Traefik's Role.
      const what = `${obj.kind} ${obj.metadata.namespace}/${obj.metadata.name}`;
      undos.push({ what, undo: () => kube.delete(resourcePath(obj.apiVersion, obj.kind, obj.metadata.namespace, obj.metadata.name)) });
      await kube.apply(obj, signal);
      opts.onMade?.(what);
    }
    for (const obj of renderSuitePolicies(ns.egress)) await kube.apply(obj, signal);
    const echoPod = await waitForEcho(kube, echo, signal);
    const serviceIp = async (namespace: string, name: string) => (await kube.get<{ spec: { clusterIP: string } }>(resourcePath('v1', 'Service', namespace, name), signal)).spec.clusterIP;
    const nodes = await kube.list<{ status?: { addresses?: { type: string; address: string }[] } }>('/api/v1/nodes', signal);
    const nodeIp = nodes[0]?.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;
    if (!nodeIp) throw new LabError('the node reports no InternalIP address');
    const ips = { echoServiceIp: await serviceIp(echo.namespace, echo.name), kubeDnsIp: await serviceIp('kube-system', 'kube-dns'), kubernetesServiceIp: await serviceIp('default', 'kubernetes') };

    const workDir = await mkdtemp(join(tmpdir(), 'labsmith-e2e-'));
    made(`work directory ${workDir}`, () => rm(workDir, { recursive: true, force: true }));

    let publicTarget: SuiteEnv['publicTarget'];
    if (!ctx.stateDir) publicTarget = { missing: 'the public target runs beside a lab; for a server given by --host it would have to be routed to this machine' };
    else if (process.getuid?.() !== 0) publicTarget = { missing: 'adding the documentation address to the host needs root' };
    else {
      publicTarget = await startPublicTarget(workDir, { ...opts.publicTarget, signal }).catch((e: Error) => {
        if (signal?.aborted) throw e;
        return { missing: `could not start the public target: ${e.message}` };
      });
      if (!isMissing(publicTarget)) {
        const target = publicTarget;
        made(`public target on ${target.address} (address on lo)`, () => target.close());
      }
    }

    let syslog: SuiteEnv['syslog'] = { missing: 'no addons.logTarget in lab.yaml: container logs are not forwarded' };
    if (ctx.logTarget) {
      const target = parseLogTarget(ctx.logTarget);
      if (target.protocol !== 'udp') syslog = { missing: `the suite listens on UDP; the log target is ${ctx.logTarget}` };
      else {
        // qemu's user network delivers the guest's 10.0.2.2 to the host's loopback.
        const bind = ctx.driver === 'qemu' && target.host === '10.0.2.2' ? '127.0.0.1' : target.host;
        syslog = await startSyslogListener(bind, target.port).catch((e: Error) => ({ missing: `cannot listen on udp ${bind}:${target.port}: ${e.message}` }));
        if (!isMissing(syslog)) {
          const listener = syslog;
          made(`syslog listener on udp ${bind}:${listener.port}`, () => listener.close());
        }
      }
    }
    if (signal?.aborted) throw new CancelledError();
    return {
      kube,
      runId,
      ns,
      echo,
      echoHost,
      echoPod: { name: echoPod.metadata.name, ip: echoPod.status!.podIP! },
      ...ips,
      nodeIp,
      hostSide: hostSideOf(ctx),
      publicTarget,
      syslog,
      workDir,
      undos,
    };
  } catch (error) {
    const leftovers = await undoAll(undos);
    if (signal?.aborted) throw new CancelledError();
    throw new SetUpError(error, leftovers);
  }
}

/** Undoes newest first; every undo is attempted even when one fails. Returns what could not be undone. */
async function undoAll(undos: Undo[]): Promise<string[]> {
  const problems: string[] = [];
  for (const { what, undo } of [...undos].reverse()) await undo().catch((e: Error) => problems.push(`${what}: ${e.message.split('\n')[0]}`));
  undos.length = 0;
  return problems;
}

/** Deletes what the suite made (also after an interrupt: no signal here). Returns what could not be removed. */
export function tearDownSuite(env: SuiteEnv): Promise<string[]> {
  return undoAll(env.undos);
}
