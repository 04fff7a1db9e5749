/**
 * The apply plan (pure): per source, in lab.yaml's order, what is applied first (Namespaces and
 * CRDs, then the CRDs' Established wait), then the Secrets labsmith makes, then everything else,
 * and which Deployments, StatefulSets and DaemonSets are waited for, with the source's budget.
 * The executor (apply.ts) runs exactly this; lab:render shows it.
 */
import type { K8sObject } from '../../cloud-init/addons/k8s-object.ts';
import type { LoadedSource } from './load.ts';

export const FIELD_MANAGER = 'labsmith';
export const ROLLOUT_KINDS = ['Deployment', 'StatefulSet', 'DaemonSet'] as const;
export type RolloutKind = (typeof ROLLOUT_KINDS)[number];

export interface RolloutTarget {
  kind: RolloutKind;
  namespace: string;
  name: string;
}

export interface SourcePlan {
  name: string;
  /** The guest's directory name for it: order and name (`01-mail`). */
  dirName: string;
  format: 'plain' | 'kustomization';
  /** Host path of a kustomization directory, rendered in the guest. */
  kustomizationDir?: string;
  /** What is shipped for it: a directory holding it and its bases, and its path inside. */
  kustomizationRoot?: { dir: string; path: string };
  /** Namespaces and CustomResourceDefinitions, applied before anything that may live in them. */
  first: K8sObject[];
  /** CRD names (`certificates.cert-manager.io`) to wait Established for before the rest. */
  crds: string[];
  secrets: K8sObject[];
  /** The rest of a plain source; a kustomization's rest is rendered in the guest. */
  objects: K8sObject[];
  rollouts: RolloutTarget[];
  rolloutTimeoutSeconds: number;
}

export interface WorkloadApplyPlan {
  sources: SourcePlan[];
}

const isFirst = (o: K8sObject) => (o.kind === 'Namespace' && o.apiVersion === 'v1') || (o.kind === 'CustomResourceDefinition' && o.apiVersion.startsWith('apiextensions.k8s.io/'));

/** Namespaces before CRDs (a CRD's conversion webhook may live in a namespace); otherwise source order. */
const firstOrder = (o: K8sObject) => (o.kind === 'Namespace' ? 0 : 1);

export function planWorkloadApply(sources: LoadedSource[], secretsBySource: Record<string, K8sObject[]>): WorkloadApplyPlan {
  return {
    sources: sources.map((loaded, i) => {
      const objects = loaded.objects.map((o) => o.object);
      const first = objects.filter(isFirst).sort((a, b) => firstOrder(a) - firstOrder(b));
      return {
        name: loaded.source.name,
        dirName: `${String(i + 1).padStart(2, '0')}-${loaded.source.name}`,
        format: loaded.format,
        ...(loaded.format === 'kustomization' ? { kustomizationDir: loaded.source.path, kustomizationRoot: loaded.kustomizationRoot ?? { dir: loaded.source.path, path: '.' } } : {}),
        first,
        crds: first.filter((o) => o.kind === 'CustomResourceDefinition').map((o) => o.metadata.name),
        secrets: secretsBySource[loaded.source.name] ?? [],
        objects: loaded.format === 'plain' ? objects.filter((o) => !isFirst(o)) : [],
        rollouts: objects
          .filter((o) => (ROLLOUT_KINDS as readonly string[]).includes(o.kind) && o.apiVersion === 'apps/v1')
          .map((o) => ({ kind: o.kind as RolloutKind, namespace: o.metadata.namespace ?? 'default', name: o.metadata.name })),
        rolloutTimeoutSeconds: loaded.source.rolloutTimeoutSeconds,
      };
    }),
  };
}

/** kubectl diff's name for an object's files: `group.version.Kind.namespace.name` (pure). */
export function diffNameOf(o: K8sObject, namespaced: boolean): string {
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
  return `${group ? `${group}.` : ''}${version}.${o.kind}.${namespaced ? (o.metadata.namespace ?? 'default') : ''}.${o.metadata.name}`;
}

/** The plan as lab:render shows it (pure): one line per source, in order. */
export function renderApplyPlanText(plan: WorkloadApplyPlan): string {
  return (
    plan.sources
      .map((s) => {
        const steps = [
          s.first.length ? `apply ${s.first.map((o) => `${o.kind} ${o.metadata.name}`).join(', ')}` : '',
          s.crds.length ? `wait for CRDs ${s.crds.join(', ')} Established` : '',
          s.secrets.length ? `apply Secrets ${s.secrets.map((o) => `${o.metadata.namespace}/${o.metadata.name}`).join(', ')}` : '',
          s.format === 'kustomization' ? `render ${s.kustomizationDir} with kubectl kustomize in the guest and apply it` : `apply ${s.objects.length} objects`,
          ...s.rollouts.map((r) => `wait for ${r.kind} ${r.namespace}/${r.name} (${s.rolloutTimeoutSeconds}s)`),
        ].filter(Boolean);
        return `${s.dirName}: ${steps.join('; ')} (kubectl apply --server-side --field-manager=${FIELD_MANAGER})`;
      })
      .join('\n') + '\n'
  );
}
