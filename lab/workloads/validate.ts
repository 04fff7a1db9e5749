/**
 * Every workload object checked before boot (pure): its schema (built-in models or a CRD of the
 * add-ons or of the sources), its namespace (in the sources or the cluster's own), and that no
 * object is defined twice. All problems at once, each naming file, line and field path.
 */
import { builtinVersionsForKind, crdKindsOf, CLUSTER_SCOPED_BUILTINS, groupOf, isBuiltinGroup, builtinVersionsOf, MODELS_KUBERNETES_VERSION, validateAgainstCrd, validateBuiltin, type CrdKind, type SchemaError } from './schemas.ts';
import { describeObject, formatFieldPath, type WorkloadObject, type WorkloadProblem } from './manifests.ts';

export interface WorkloadValidationInput {
  objects: WorkloadObject[];
  /** Kinds the cluster's add-ons define (Calico, cert-manager), from their locked manifests. */
  addonCrds: CrdKind[];
  /** Namespaces the cluster makes itself (kube-system, the add-ons'). */
  clusterNamespaces: string[];
  kubernetesVersion: string;
  /** API groups of add-ons whose manifest (and so CRDs) is not at hand, with what to do. */
  unavailableGroups?: Record<string, string>;
}

/** Where a kind that is not a model nor a CRD here usually comes from: a hint for the user. */
const KNOWN_ELSEWHERE: Record<string, string> = {
  'traefik.io': "Traefik runs in this lab without its CRDs (its file provider serves the lab's certificate): use an Ingress, or put Traefik's CRDs in a workloads source",
  'traefik.containo.us': "Traefik's old API group, gone since Traefik v3; and this lab's Traefik runs without CRDs: use an Ingress",
  'gateway.networking.k8s.io': "the Gateway API CRDs are not installed in this lab: put them in a workloads source",
  'monitoring.coreos.com': 'the Prometheus operator is not installed in this lab: put its CRDs in a workloads source',
};

/** Whether the API server keeps the object in a namespace (pure): built-in table, else the CRD's scope, else by its namespace field. */
export function isNamespaced(object: { apiVersion: string; kind: string; metadata: { namespace?: string } }, crds: CrdKind[]): boolean {
  const group = groupOf(object.apiVersion);
  const crd = !isBuiltinGroup(group) && crds.find((c) => c.group === group && c.kind === object.kind);
  if (crd) return crd.namespaced;
  if (isBuiltinGroup(group)) return !CLUSTER_SCOPED_BUILTINS.has(object.kind);
  return object.metadata.namespace !== undefined;
}

/** The words of a problem that is about a missing input, not about the object (lab:render shows it as a note). */
export const NOT_VALIDATED = 'not validated';

export function validateWorkloads(input: WorkloadValidationInput): WorkloadProblem[] {
  const problems: WorkloadProblem[] = [];
  const sourceCrds = crdKindsOf(
    input.objects.map((o) => o.object),
    (o) => {
      const w = input.objects.find((x) => x.object === o)!;
      return `${w.file}:${w.line}`;
    },
  );
  const crds = new Map<string, CrdKind>();
  for (const c of [...input.addonCrds, ...sourceCrds]) crds.set(`${c.group} ${c.kind}`, c);

  const namespaces = new Set(input.clusterNamespaces);
  for (const w of input.objects) if (w.object.kind === 'Namespace' && w.object.apiVersion === 'v1') namespaces.add(w.object.metadata.name);

  const seen = new Map<string, WorkloadObject>();
  for (const w of input.objects) {
    const { object } = w;
    const report = (path: (string | number)[], message: string) => problems.push({ file: w.file, line: w.lineOf(path), path: formatFieldPath(path), message, object: describeObject(object) });
    const group = groupOf(object.apiVersion);
    const crd = crds.get(`${group} ${object.kind}`);
    let namespaced: boolean | undefined;
    let errors: SchemaError[] | undefined;
    if (crd && !isBuiltinGroup(group)) {
      namespaced = crd.namespaced;
      const version = crd.versions.find((v) => `${group}/${v.name}` === object.apiVersion);
      if (!version) report(['apiVersion'], `${object.apiVersion} is not served by the ${object.kind} CRD (${crd.definedBy}): use ${crd.versions.map((v) => `${group}/${v.name}`).join(' or ')}`);
      else errors = validateAgainstCrd(object, version.schema);
    } else {
      errors = validateBuiltin(object);
      namespaced = !CLUSTER_SCOPED_BUILTINS.has(object.kind);
      if (errors === undefined) {
        namespaced = undefined;
        const sameGroup = builtinVersionsOf(group, object.kind);
        const ga = sameGroup.length || !/(alpha|beta)\d*$/.test(object.apiVersion) ? sameGroup : builtinVersionsForKind(object.kind);
        if (ga.length) report(['apiVersion'], `${object.apiVersion} is not served by Kubernetes ${input.kubernetesVersion}: use ${ga.join(' or ')}`);
        else if (isBuiltinGroup(group)) report(['kind'], `${object.apiVersion} ${object.kind}: no such built-in kind in the Kubernetes ${MODELS_KUBERNETES_VERSION} models (kubernetes-models 4.5.0)`);
        else if (input.unavailableGroups?.[group]) report(['kind'], `${object.kind} (${object.apiVersion}) ${NOT_VALIDATED}: ${input.unavailableGroups[group]}`);
        else
          report(['kind'], `unknown kind ${object.kind} (${object.apiVersion}): no Kubernetes model and no CustomResourceDefinition in the add-ons or the sources defines it${KNOWN_ELSEWHERE[group] ? `; ${KNOWN_ELSEWHERE[group]}` : ''}`);
      }
    }
    for (const e of errors ?? []) report(e.path, e.message);

    // Namespace: a namespaced object's (or the default one's) must exist; a cluster-scoped one has none.
    const ns = object.metadata.namespace;
    if (namespaced === false && ns !== undefined) report(['metadata', 'namespace'], `${object.kind} is cluster-scoped: remove metadata.namespace`);
    if (namespaced && ns !== undefined && !namespaces.has(ns)) {
      report(['metadata', 'namespace'], `namespace ${ns} does not exist: no Namespace object in the sources defines it, and the cluster makes only ${[...namespaces].filter((n) => input.clusterNamespaces.includes(n)).sort().join(', ')}`);
    }

    const key = `${group} ${object.kind} ${namespaced === false ? '' : (ns ?? 'default')} ${object.metadata.name}`;
    const first = seen.get(key);
    if (first) report([], `defined twice: also at ${first.file}:${first.line}${first.source !== w.source ? ` (source ${first.source})` : ''}`);
    else seen.set(key, w);
  }
  return problems;
}
