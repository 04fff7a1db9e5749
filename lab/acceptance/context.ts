/** What the checks need to reach a lab (from its state directory, or from flags for a restored server). */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LabError } from '../../core/errors.ts';
import { LAB_FILES } from '../../core/paths.ts';
import { KubeClient } from '../kube/client.ts';
import { loadKubeconfig } from '../kube/kubeconfig.ts';
import type { KeyedSshTarget, SshTarget } from '../ssh.ts';
import { readLabState, type LabState } from '../state.ts';
import type { LabConfig } from '../../config/lab-config.ts';
import type { LabDriver } from '../drivers/driver.ts';

export interface AcceptanceContext {
  /** Absent for a server given by --host: checks that need a shell on the node say so. */
  ssh?: SshTarget;
  /** Address the ingress ports are reached on (the lab's forwards, or the server itself). */
  address: string;
  /** Forward name → host port. */
  ports: Record<string, number>;
  caCert: string;
  /** The name the placeholder's certificate is issued for (OS-only labs). */
  tlsName: string;
  /**
   * The cluster, or why there is none. `noKubernetes`: the machine has no Kubernetes at all (an
   * OS-only image), so there is no cluster to check, as opposed to one that cannot be reached.
   */
  cluster: { kube: KubeClient; kubeconfig: string } | { missing: string; noKubernetes?: true };
  dnsDomain: string;
  /** The lab domain: the ingress serves *.<ingressDomain>. */
  ingressDomain: string;
  /** The lab's state directory, for the serial log in failure bundles (absent with --host). */
  stateDir?: string;
  /** The lab's driver name: decides how the suite reaches the host side of the lab network. */
  driver?: string;
  /** The syslog target the node forwards container logs to (lab.yaml addons.logTarget). */
  logTarget?: string;
  /** false on a machine from the server seed: it trusts no lab CA (its certificates come from Let's Encrypt). */
  trustsLabCa?: boolean;
}

export const PLACEHOLDER_TLS_NAME = 'localhost';
export const OS_ONLY_REASON = 'no Kubernetes in this image: the lab was built OS-only (--os-only or kubernetes.enabled: false)';

async function clusterAccess(kubeconfig: string): Promise<AcceptanceContext['cluster']> {
  if (!existsSync(kubeconfig)) return { missing: `no kubeconfig at ${kubeconfig}: lab:up writes it once the cluster is up` };
  return { kube: new KubeClient(await loadKubeconfig(kubeconfig)), kubeconfig };
}

export async function acceptanceContextFromLab(state: LabState, stateDir: string, ssh: { host: string; port: number }, opts: { logTarget?: string } = {}): Promise<AcceptanceContext> {
  const caCert = await readFile(join(stateDir, LAB_FILES.caCert), 'utf8').catch(() => {
    throw new LabError(`the lab CA certificate ${join(stateDir, LAB_FILES.caCert)} is missing`, 'recreate the lab: npm run lab:down && npm run lab:up');
  });
  const address = state.hostAddress === '0.0.0.0' ? '127.0.0.1' : state.hostAddress;
  return {
    ssh: { stateDir, user: state.sshUser, host: ssh.host, port: ssh.port },
    address,
    ports: Object.fromEntries(state.forwards.map((f) => [f.name, f.host])),
    caCert,
    tlsName: PLACEHOLDER_TLS_NAME,
    cluster: state.kubernetes ? await clusterAccess(join(stateDir, LAB_FILES.kubeconfig)) : { missing: OS_ONLY_REASON, noKubernetes: true },
    dnsDomain: state.dnsDomain ?? 'cluster.local',
    ingressDomain: state.ingressDomain ?? `${state.name}.test`,
    stateDir,
    driver: state.driver,
    logTarget: opts.logTarget,
  };
}

/** A server built from our image but not started by lab:up (a restore): reached by its kubeconfig and address. */
export async function acceptanceContextFromServer(opts: { kubeconfig: string; host: string; caCert: string; ingressDomain: string; dnsDomain: string; logTarget?: string }): Promise<AcceptanceContext> {
  const caCert = await readFile(opts.caCert, 'utf8').catch(() => {
    throw new LabError(`--ca ${opts.caCert} cannot be read`, "pass the lab CA certificate the server's ClusterIssuer uses");
  });
  return {
    address: opts.host,
    ports: { http: 80, https: 443 },
    caCert,
    tlsName: PLACEHOLDER_TLS_NAME,
    cluster: await clusterAccess(opts.kubeconfig),
    dnsDomain: opts.dnsDomain,
    ingressDomain: opts.ingressDomain,
    logTarget: opts.logTarget,
  };
}

/** The running lab of this config, as the suite reaches it. */
export async function acceptanceContextForLab(config: LabConfig, driver: LabDriver): Promise<AcceptanceContext> {
  const state = await readLabState(config.stateDir);
  if (!state) throw new LabError(`lab ${config.name} is not running`, 'start it first: npm run lab:up (or test a server with --kubeconfig and --host)');
  return acceptanceContextFromLab(state, config.stateDir, driver.sshEndpoint(state), { logTarget: config.addons.logTarget });
}

export const NO_KUBERNETES_ON_TARGET = 'the restored machine has no Kubernetes (no kubeadm: an OS-only image), so there is no cluster to check';

/**
 * A machine from the server seed reached over SSH with its own key (a restore target, the
 * drill's new hardware): the host checks and the user's run; the cluster checks with a
 * kubeconfig, and without Kubernetes on the machine they have nothing to run against.
 */
export async function acceptanceContextFromMachine(opts: {
  ssh: KeyedSshTarget;
  address: string;
  ports: Record<string, number>;
  /** PEM text the ingress's certificate chains to (the placeholder's own on an OS-only server). */
  caCert: string;
  tlsName: string;
  ingressDomain: string;
  dnsDomain: string;
  /** The cluster's admin kubeconfig (kubeconfigs from before the backup stay valid), or whether the machine has Kubernetes at all. */
  cluster: { kubeconfig: string } | { hasKubernetes: boolean };
  logTarget?: string;
}): Promise<AcceptanceContext> {
  const cluster: AcceptanceContext['cluster'] = 'kubeconfig' in opts.cluster
    ? await clusterAccess(opts.cluster.kubeconfig)
    : opts.cluster.hasKubernetes
      ? { missing: 'the machine has Kubernetes but no kubeconfig was given for it: pass --kubeconfig FILE (its admin kubeconfig) and --ca FILE' }
      : { missing: NO_KUBERNETES_ON_TARGET, noKubernetes: true };
  return { ssh: opts.ssh, address: opts.address, ports: opts.ports, caCert: opts.caCert, tlsName: opts.tlsName, cluster, dnsDomain: opts.dnsDomain, ingressDomain: opts.ingressDomain, logTarget: opts.logTarget, trustsLabCa: false };
}
