/**
 * kubeadm config fields, component flags and feature gates a target removes (pure): a version
 * table with its sources, and the check of the cluster's stored ClusterConfiguration against it.
 * A row applies to every target at or after `removedIn`: the stored configuration kubeadm hands
 * to the new version must not carry anything the new version no longer reads.
 *
 * Sources (checked 2026-12-01): kubeadm's v1beta4 types (extraArgs are lists of {name, value};
 * REFERENCE.md), Kubernetes CHANGELOG-1.26 ("kubeadm: the v1beta2 API was removed"),
 * CHANGELOG-1.24 (kube-apiserver --insecure-port removed), CHANGELOG-1.27 (kubelet
 * --container-runtime removed after dockershim). No 1.38 removal is documented yet (1.38 is not
 * released): when its notes name one, add a row here with the release-notes link.
 */
import { parse } from 'yaml';
import type { PrecheckProblem } from './prechecks.ts';

export interface KubeadmRemoval {
  kind: 'api-version' | 'flag' | 'feature-gate' | 'field';
  /** apiVersion, `component --flag`, gate name, or a dotted field path. */
  name: string;
  component?: 'apiServer' | 'controllerManager' | 'scheduler' | 'etcd' | 'kubelet';
  removedIn: string;
  replacement: string;
  source: string;
}

export const KUBEADM_REMOVALS: readonly KubeadmRemoval[] = [
  { kind: 'api-version', name: 'kubeadm.k8s.io/v1beta2', removedIn: '1.26', replacement: 'kubeadm.k8s.io/v1beta4 (kubeadm config migrate)', source: 'https://github.com/kubernetes/kubernetes/blob/master/CHANGELOG/CHANGELOG-1.26.md' },
  { kind: 'api-version', name: 'kubeadm.k8s.io/v1beta3', removedIn: '1.37', replacement: 'kubeadm.k8s.io/v1beta4 (kubeadm config migrate)', source: 'REFERENCE.md: kubeadm config v1beta4, v1beta3 removed' },
  { kind: 'flag', name: 'insecure-port', component: 'apiServer', removedIn: '1.24', replacement: 'none: the API server serves only TLS', source: 'https://github.com/kubernetes/kubernetes/blob/master/CHANGELOG/CHANGELOG-1.24.md' },
  { kind: 'flag', name: 'container-runtime', component: 'kubelet', removedIn: '1.27', replacement: 'none: the kubelet always talks CRI (--container-runtime-endpoint)', source: 'https://github.com/kubernetes/kubernetes/blob/master/CHANGELOG/CHANGELOG-1.27.md' },
];

function minorNumber(v: string): number {
  return Number(/^v?1\.(\d+)/.exec(v)?.[1] ?? Number.NaN);
}

type Args = unknown;

/** v1beta4's extraArgs is a list of {name, value}; a map is v1beta3's (kubeadm refuses it). */
function argNames(args: Args, path: string, problems: PrecheckProblem[]): string[] {
  if (args === undefined || args === null) return [];
  if (Array.isArray(args)) return args.map((a) => String((a as { name?: unknown })?.name ?? ''));
  if (typeof args === 'object') {
    problems.push({ check: 'kubeadm-config', message: `${path} is a map (v1beta3's shape); v1beta4 wants a list of {name, value}`, hint: 'kubeadm config migrate --old-config FILE writes the v1beta4 form' });
    return Object.keys(args as object);
  }
  return [];
}

/** The stored ClusterConfiguration (kube-system/kubeadm-config, key ClusterConfiguration) against the table. */
export function checkKubeadmConfig(clusterConfiguration: string, target: string, table: readonly KubeadmRemoval[] = KUBEADM_REMOVALS): PrecheckProblem[] {
  const problems: PrecheckProblem[] = [];
  let doc: Record<string, any>;
  try {
    doc = (parse(clusterConfiguration) ?? {}) as Record<string, any>;
  } catch (error) {
    return [{ check: 'kubeadm-config', message: `the cluster's ClusterConfiguration is not valid YAML: ${(error as Error).message.split('\n')[0]}`, hint: 'kubectl -n kube-system get configmap kubeadm-config -o yaml' }];
  }
  const t = minorNumber(target);
  const applies = table.filter((r) => minorNumber(r.removedIn) <= t);
  const hit = (r: KubeadmRemoval, where: string) =>
    problems.push({ check: 'kubeadm-config', message: `${where}: ${r.kind} ${r.component ? `${r.component} --${r.name}` : r.name} was removed in Kubernetes ${r.removedIn}`, hint: `${r.replacement} (source: ${r.source})` });
  for (const r of applies.filter((x) => x.kind === 'api-version')) if (doc.apiVersion === r.name) hit(r, 'ClusterConfiguration apiVersion');
  const components: Record<string, Args> = {
    apiServer: doc.apiServer?.extraArgs,
    controllerManager: doc.controllerManager?.extraArgs,
    scheduler: doc.scheduler?.extraArgs,
    etcd: doc.etcd?.local?.extraArgs,
  };
  for (const [component, args] of Object.entries(components)) {
    const names = argNames(args, `ClusterConfiguration.${component === 'etcd' ? 'etcd.local' : component}.extraArgs`, problems);
    for (const r of applies.filter((x) => x.kind === 'flag' && x.component === component)) if (names.includes(r.name)) hit(r, `ClusterConfiguration.${component}.extraArgs`);
    // --feature-gates=A=true,B=false inside extraArgs
    const gates = Array.isArray(args) ? (args as { name?: string; value?: string }[]).filter((a) => a?.name === 'feature-gates').flatMap((a) => String(a.value ?? '').split(',').map((g) => g.split('=')[0]!.trim())) : [];
    for (const r of applies.filter((x) => x.kind === 'feature-gate')) if (gates.includes(r.name)) hit(r, `ClusterConfiguration.${component}.extraArgs feature-gates`);
  }
  for (const r of applies.filter((x) => x.kind === 'feature-gate')) if (doc.featureGates && r.name in doc.featureGates) hit(r, 'ClusterConfiguration.featureGates');
  for (const r of applies.filter((x) => x.kind === 'field')) {
    const value = r.name.split('.').reduce<any>((o, k) => (o == null ? undefined : o[k]), doc);
    if (value !== undefined) hit(r, `ClusterConfiguration.${r.name}`);
  }
  return problems;
}

/** The kubelet's flags in /var/lib/kubelet/kubeadm-flags.env (KUBELET_KUBEADM_ARGS="--a=b --c=d"). */
export function checkKubeletFlags(kubeadmFlagsEnv: string, target: string, table: readonly KubeadmRemoval[] = KUBEADM_REMOVALS): PrecheckProblem[] {
  const t = minorNumber(target);
  const flags = [...kubeadmFlagsEnv.matchAll(/--([a-z0-9-]+)/g)].map((m) => m[1]!);
  return table
    .filter((r) => r.kind === 'flag' && r.component === 'kubelet' && minorNumber(r.removedIn) <= t && flags.includes(r.name))
    .map((r) => ({ check: 'kubeadm-config' as const, message: `/var/lib/kubelet/kubeadm-flags.env: kubelet --${r.name} was removed in Kubernetes ${r.removedIn}`, hint: `${r.replacement} (source: ${r.source})` }));
}
