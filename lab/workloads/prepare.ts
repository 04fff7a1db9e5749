/**
 * Everything before boot (effectful at the edges, pure in the middle): read every source and
 * every secret value, validate all objects, plan the apply. Every problem at once, each naming
 * lab.yaml's field path or the manifest's file:line and field path; nothing boots until none is left.
 */
import type { UpstreamTexts } from '../../cloud-init/addons/bundle.ts';
import type { K8sObject } from '../../cloud-init/addons/k8s-object.ts';
import type { LabConfig } from '../../config/lab-config.ts';
import { LabError, type ConfigProblem } from '../../core/errors.ts';
import { clusterFactsFor } from './cluster-facts.ts';
import { ensureHostKustomize } from './kustomize.ts';
import { loadWorkloadSource, type HostRenderer, type LoadedSource } from './load.ts';
import { describeObject, formatWorkloadProblem, type WorkloadObject, type WorkloadProblem } from './manifests.ts';
import { diffNameOf, planWorkloadApply, type WorkloadApplyPlan } from './plan.ts';
import { crdKindsOf } from './schemas.ts';
import { readWorkloadSecrets, renderSecretObjects, renderSecretPlaceholders, type ResolvedSecret } from './secrets.ts';
import { isNamespaced, NOT_VALIDATED, validateWorkloads } from './validate.ts';

export class WorkloadError extends LabError {
  constructor(
    readonly configFile: string,
    readonly configProblems: ConfigProblem[],
    readonly problems: WorkloadProblem[],
  ) {
    const all = [...configProblems.map((p) => `${configFile}: ${p.path}: ${p.message}`), ...problems.map(formatWorkloadProblem)];
    super(`workloads: ${all.length} problem${all.length === 1 ? '' : 's'}:\n${all.map((l) => `  - ${l}`).join('\n')}`, 'fix the manifests or the workloads: fields named above, then rerun (nothing was booted or applied)', 2);
  }
}

export interface PreparedWorkloads {
  loaded: LoadedSource[];
  secrets: ResolvedSecret[];
  plan: WorkloadApplyPlan;
  /** Every object the host knows, with kubectl diff's name for it (for the change report). */
  known: { source: string; diffName: string; display: string }[];
  /** Kustomizations the host could not render, and similar: shown as warnings. */
  notes: string[];
  /** How many objects could not be validated yet (their add-on's manifest was not at hand). */
  deferred: number;
}

export interface PrepareOptions {
  configFile?: string;
  /** The add-on manifests the cluster gets (their CRDs and namespaces). */
  upstream: Partial<UpstreamTexts>;
  /** lab:render: secrets as named placeholders, no value read. */
  placeholders?: boolean;
  /** Kinds whose add-on manifest is not at hand yet are notes, not problems (lab:render; lab:up before the image build fetches them). */
  deferUnavailable?: boolean;
  env?: NodeJS.ProcessEnv;
  renderer?: () => Promise<HostRenderer>;
  signal?: AbortSignal;
}

/** kustomize for the host, fetched once per process; where it cannot be had, the reason. */
export function defaultRenderer(signal?: AbortSignal): () => Promise<HostRenderer> {
  let found: Promise<HostRenderer> | undefined;
  return () => (found ??= ensureHostKustomize({ signal }).catch((e: Error) => ({ unavailable: `kustomize could not be fetched from Debian: ${e.message.split('\n')[0]}` })));
}

export async function prepareWorkloads(config: LabConfig, opts: PrepareOptions): Promise<PreparedWorkloads> {
  const renderer = opts.renderer ?? defaultRenderer(opts.signal);
  const loaded: LoadedSource[] = [];
  for (const source of config.workloads) loaded.push(await loadWorkloadSource(source, renderer, { signal: opts.signal }));
  const read = opts.placeholders ? { secrets: [] as ResolvedSecret[], problems: [] as ConfigProblem[] } : await readWorkloadSecrets(config.workloads, opts.env);
  const secretObjects: Record<string, K8sObject[]> = {};
  if (opts.placeholders) {
    for (const w of config.workloads) secretObjects[w.name] = renderSecretPlaceholders([w]);
  } else {
    for (const s of read.secrets) (secretObjects[s.source] ??= []).push(...renderSecretObjects([s]));
  }
  const facts = clusterFactsFor(config, opts.upstream);
  const secretEntries: WorkloadObject[] = config.workloads.flatMap((w, i) =>
    (secretObjects[w.name] ?? []).map((object, j) => ({ source: w.name, file: `${opts.configFile ?? 'lab.yaml'} (workloads.${i}.secrets.${j})`, line: 0, object, lineOf: () => 0 })),
  );
  const objects = [...loaded.flatMap((l) => l.objects), ...secretEntries];
  // The Secrets labsmith makes are checked like any object: their namespace, a clash with a manifest's.
  const found = [...loaded.flatMap((l) => l.problems), ...validateWorkloads({ objects, kubernetesVersion: config.kubernetes.version, ...facts })];
  const deferred = opts.deferUnavailable ? found.filter((p) => p.message.includes(` ${NOT_VALIDATED}: `)) : [];
  const problems = found.filter((p) => !deferred.includes(p));
  if (read.problems.length || problems.length) throw new WorkloadError(opts.configFile ?? 'lab.yaml', read.problems, problems);
  const plan = planWorkloadApply(loaded, secretObjects);
  const crds = [...facts.addonCrds, ...crdKindsOf(objects.map((o) => o.object), () => '')];
  const known = objects.map((o) => ({ source: o.source, diffName: diffNameOf(o.object, isNamespaced(o.object, crds)), display: describeObject(o.object) }));
  return { loaded, secrets: read.secrets, plan, known, notes: [...loaded.flatMap((l) => (l.unrendered ? [l.unrendered] : [])), ...deferred.map(formatWorkloadProblem)], deferred: deferred.length };
}
