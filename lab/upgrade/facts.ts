/**
 * What the rehearsal knows about the running node before it plans: gathered over SSH once
 * (`gatherUpgradeFacts`), parsed by pure functions from the commands' recorded outputs, and kept
 * as a JSON file (`--save-facts`) so a plan can be made again, or against production, from them.
 */
import { LabError } from '../../core/errors.ts';
import type { RunResult } from '../../core/exec.ts';
import { BOOTSTRAP_PATHS, STAGED_UPGRADE_PATHS } from '../../core/paths.ts';
import { remoteRun, type RemoteHost } from '../backup/remote.ts';
import { parseCtrImages, type ContainerdImage } from './prechecks.ts';

export interface NodeFacts {
  /** dpkg's versions of the packages that matter (absent: not installed). */
  packages: Record<string, string>;
  /** `containerd --version` */
  containerdVersion: string;
  containerdImages: ContainerdImage[];
  /** Mount point → free bytes. */
  freeBytes: Record<string, number>;
  /** Files of the image's staged upgrade payloads, `<minor>/debs/…` → bytes. */
  stagedFiles: Record<string, number>;
  /** Absent on a lab without a cluster (OS-only, or bootstrap not finished): why. */
  cluster: ClusterFacts | { missing: string };
}

export interface ClusterFacts {
  /** The API server's gitVersion, e.g. v1.37.2. */
  serverVersion: string;
  nodeName: string;
  /** kube-system/kubeadm-config's ClusterConfiguration, as stored. */
  clusterConfiguration: string;
  /** /var/lib/kubelet/kubeadm-flags.env */
  kubeletFlags: string;
  /** The cluster's own objects (`kubectl get … -o yaml` of the listable kinds), one YAML text. */
  objects: string;
  /** apiserver_requested_deprecated_apis: what clients asked for that a release removes. */
  deprecatedApiRequests: DeprecatedApiRequest[];
  /** Host directories of the local volumes (PV hostPath/local paths). */
  volumeDirs: string[];
}

export interface DeprecatedApiRequest { group: string; version: string; resource: string; removedRelease: string }

export const FACT_PACKAGES = ['kubeadm', 'kubelet', 'kubectl', 'cri-tools', 'kubernetes-cni', 'containerd', 'docker.io', 'runc'] as const;

const KUBECTL = ['sudo', 'kubectl', '--kubeconfig', BOOTSTRAP_PATHS.adminKubeconfig];

/** The commands the facts come from, in order (the gather step runs exactly these). */
export function renderFactCommands(opts: { mounts: string[] }): Record<string, string[]> {
  return {
    packages: ['dpkg-query', '-W', '-f', '${Package} ${Version} ${db:Status-Status}\\n', ...FACT_PACKAGES],
    containerdVersion: ['containerd', '--version'],
    containerdImages: ['sudo', 'ctr', '-n', 'k8s.io', 'images', 'ls'],
    disk: ['df', '-B1', '--output=target,avail', ...opts.mounts],
    serverVersion: [...KUBECTL, 'version', '-o', 'json'],
    nodeName: [...KUBECTL, 'get', 'nodes', '-o', 'jsonpath={.items[0].metadata.name}'],
    clusterConfiguration: [...KUBECTL, '-n', 'kube-system', 'get', 'configmap', 'kubeadm-config', '-o', 'jsonpath={.data.ClusterConfiguration}'],
    kubeletFlags: ['sudo', 'cat', '/var/lib/kubelet/kubeadm-flags.env'],
    objects: [...KUBECTL, 'get', 'deployments,statefulsets,daemonsets,cronjobs,jobs,ingresses,networkpolicies,poddisruptionbudgets,horizontalpodautoscalers,services,configmaps,persistentvolumeclaims', '-A', '-o', 'yaml'],
    metrics: [...KUBECTL, 'get', '--raw', '/metrics'],
    staged: ['find', `/${STAGED_UPGRADE_PATHS.dir}`, '-type', 'f', '-printf', '%P %s\\n'],
    volumes: [...KUBECTL, 'get', 'pv', '-o', 'jsonpath={range .items[*]}{.spec.hostPath.path}{.spec.local.path}{"\\n"}{end}'],
  };
}

/** `dpkg-query -W -f '${Package} ${Version} ${db:Status-Status}\n'`: installed packages only. */
export function parseDpkgVersions(output: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of output.split('\n')) {
    const [name, version, status] = line.trim().split(/\s+/);
    if (name && version && (status === undefined || status === 'installed')) out[name] = version;
  }
  return out;
}

/** `find DIR -type f -printf '%P %s\n'` → relative path → bytes. */
export function parseFindSizes(output: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of output.split('\n')) {
    const m = /^(.+) (\d+)$/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** The files of one minor's staged payload, relative to its directory (`debs/…`, `images/…`). */
export function stagedPayloadFiles(facts: Pick<NodeFacts, 'stagedFiles'>, minor: string): Record<string, number> | undefined {
  const prefix = `${minor}/`;
  const files = Object.entries(facts.stagedFiles).filter(([p]) => p.startsWith(prefix));
  return files.length ? Object.fromEntries(files.map(([p, n]) => [p.slice(prefix.length), n])) : undefined;
}

/** `df -B1 --output=target,avail` */
export function parseDfAvail(output: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of output.split('\n').slice(1)) {
    const m = /^(\S+)\s+(\d+)\s*$/.exec(line.trim());
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** `kubectl version -o json` → serverVersion.gitVersion */
export function parseServerVersion(json: string): string | undefined {
  try {
    return (JSON.parse(json) as { serverVersion?: { gitVersion?: string } }).serverVersion?.gitVersion;
  } catch {
    return undefined;
  }
}

/** The API server's apiserver_requested_deprecated_apis series (Prometheus text). */
export function parseDeprecatedApiRequests(metrics: string): DeprecatedApiRequest[] {
  const out: DeprecatedApiRequest[] = [];
  for (const line of metrics.split('\n')) {
    if (!line.startsWith('apiserver_requested_deprecated_apis{')) continue;
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    out.push({ group: labels.group ?? '', version: labels.version ?? '', resource: labels.resource ?? '', removedRelease: labels.removed_release ?? '' });
  }
  return out;
}

/** The mounts whose free space matters: root, containerd's and etcd's stores. */
export const FACT_MOUNTS = ['/', '/var/lib/containerd', '/var/lib/etcd'];

/** Builds NodeFacts from the commands' results (pure: what `gatherUpgradeFacts` ran, or a recording). */
export function parseNodeFacts(results: Record<string, Pick<RunResult, 'exitCode' | 'stdout' | 'stderr'>>, storageDir: string): NodeFacts {
  const ok = (k: string) => results[k]?.exitCode === 0;
  const out = (k: string) => results[k]?.stdout ?? '';
  const packages = parseDpkgVersions(out('packages'));
  const node: Omit<NodeFacts, 'cluster'> = {
    packages,
    containerdVersion: ok('containerdVersion') ? out('containerdVersion').trim() : packages.containerd ?? '',
    containerdImages: ok('containerdImages') ? parseCtrImages(out('containerdImages')) : [],
    freeBytes: parseDfAvail(out('disk')),
    stagedFiles: parseFindSizes(out('staged')),
  };
  if (!packages.kubeadm) return { ...node, cluster: { missing: 'kubeadm is not installed: an OS-only lab has no cluster to upgrade' } };
  const serverVersion = ok('serverVersion') ? parseServerVersion(out('serverVersion')) : undefined;
  if (!serverVersion) {
    const why = (results.serverVersion?.stderr ?? '').trim().split('\n').pop() || 'no answer';
    return { ...node, cluster: { missing: `the API server did not answer kubectl version (${why}): the cluster is not running or not bootstrapped` } };
  }
  const dirs = out('volumes').split('\n').map((l) => l.trim()).filter((d) => d !== '' && (d === storageDir || d.startsWith(`${storageDir.replace(/\/$/, '')}/`)));
  return {
    ...node,
    cluster: {
      serverVersion,
      nodeName: out('nodeName').trim(),
      clusterConfiguration: out('clusterConfiguration'),
      kubeletFlags: ok('kubeletFlags') ? out('kubeletFlags') : '',
      objects: ok('objects') ? out('objects') : '',
      deprecatedApiRequests: ok('metrics') ? parseDeprecatedApiRequests(out('metrics')) : [],
      volumeDirs: [...new Set(dirs)].sort(),
    },
  };
}

/** Runs every fact command on the node (reads only); a node that does not answer SSH is an error. */
export async function gatherUpgradeFacts(remote: RemoteHost, storageDir: string, signal?: AbortSignal): Promise<NodeFacts> {
  const results: Record<string, RunResult> = {};
  for (const [key, argv] of Object.entries(renderFactCommands({ mounts: FACT_MOUNTS }))) {
    results[key] = await remoteRun(remote, argv, { signal, allowFailure: true, timeoutMs: 120_000 });
    if (results[key]!.exitCode === 255) throw new LabError(`SSH to ${remote.user}@${remote.host}:${remote.port} failed: ${results[key]!.stderr.trim().split('\n').pop()}`, 'is the lab running? npm run lab:status');
  }
  return parseNodeFacts(results, storageDir);
}
