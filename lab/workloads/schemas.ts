/**
 * The schemas workload objects are checked against:
 *  - built-in kinds: the `kubernetes-models` 4.5.0 validators, generated from Kubernetes 1.33's
 *    OpenAPI (networking.k8s.io/v1 IPAddress and ServiceCIDR, GA in 1.33, are there;
 *    storage.k8s.io/v1 VolumeAttributesClass and resource.k8s.io, GA in 1.34, are not). The lab
 *    runs 1.37: the GA groups only grow, so what validates here is served there, and kinds newer
 *    than 1.33 have no schema here (an error naming the kind). Beta versions are refused: 1.37
 *    serves none of the old ones, and new betas are off by default on a kubeadm cluster.
 *    The models do not flag unknown fields; the API server's strict field validation does, at apply.
 *  - add-on kinds (Calico, cert-manager) and CRDs in the sources: each CRD version's
 *    openAPIV3Schema compiled with ajv, unknown fields refused where the schema does not preserve them.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import * as admissionregistrationV1 from 'kubernetes-models/admissionregistration.k8s.io/v1';
import * as apiextensionsV1 from 'kubernetes-models/apiextensions.k8s.io/v1';
import * as apiregistrationV1 from 'kubernetes-models/apiregistration.k8s.io/v1';
import * as appsV1 from 'kubernetes-models/apps/v1';
import * as autoscalingV1 from 'kubernetes-models/autoscaling/v1';
import * as autoscalingV2 from 'kubernetes-models/autoscaling/v2';
import * as batchV1 from 'kubernetes-models/batch/v1';
import * as certificatesV1 from 'kubernetes-models/certificates.k8s.io/v1';
import * as coordinationV1 from 'kubernetes-models/coordination.k8s.io/v1';
import * as discoveryV1 from 'kubernetes-models/discovery.k8s.io/v1';
import * as eventsV1 from 'kubernetes-models/events.k8s.io/v1';
import * as flowcontrolV1 from 'kubernetes-models/flowcontrol.apiserver.k8s.io/v1';
import * as networkingV1 from 'kubernetes-models/networking.k8s.io/v1';
import * as nodeV1 from 'kubernetes-models/node.k8s.io/v1';
import * as policyV1 from 'kubernetes-models/policy/v1';
import * as rbacV1 from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import * as schedulingV1 from 'kubernetes-models/scheduling.k8s.io/v1';
import * as storageV1 from 'kubernetes-models/storage.k8s.io/v1';
import * as coreV1 from 'kubernetes-models/v1';
import type { K8sObject } from '../../cloud-init/addons/k8s-object.ts';

export const MODELS_KUBERNETES_VERSION = '1.33';

const GA_MODULES = [
  admissionregistrationV1, apiextensionsV1, apiregistrationV1, appsV1, autoscalingV1, autoscalingV2, batchV1, certificatesV1, coordinationV1,
  discoveryV1, eventsV1, flowcontrolV1, networkingV1, nodeV1, policyV1, rbacV1, schedulingV1, storageV1, coreV1,
] as unknown as Record<string, unknown>[];

type ModelClass = { apiVersion?: string; kind?: string; new (data: unknown): { validate(): void } };

/** "apps/v1 Deployment" → its model class: only top-level kinds (those with a static apiVersion and kind). */
const BUILTIN_MODELS = new Map<string, ModelClass>();
for (const mod of GA_MODULES) {
  for (const value of Object.values(mod)) {
    const cls = value as ModelClass;
    if (typeof cls === 'function' && typeof cls.apiVersion === 'string' && typeof cls.kind === 'string' && !cls.kind.endsWith('List')) BUILTIN_MODELS.set(`${cls.apiVersion} ${cls.kind}`, cls);
  }
}

/** Built-in kinds the API server keeps outside namespaces. */
export const CLUSTER_SCOPED_BUILTINS = new Set([
  'Namespace', 'Node', 'PersistentVolume', 'ClusterRole', 'ClusterRoleBinding', 'StorageClass', 'CSIDriver', 'CSINode', 'VolumeAttachment',
  'CustomResourceDefinition', 'APIService', 'PriorityClass', 'RuntimeClass', 'IngressClass', 'MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration',
  'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding', 'CertificateSigningRequest', 'FlowSchema', 'PriorityLevelConfiguration', 'IPAddress', 'ServiceCIDR',
  'ComponentStatus', 'TokenReview', 'SelfSubjectReview', 'SubjectAccessReview', 'SelfSubjectAccessReview', 'SelfSubjectRulesReview',
]);

export interface SchemaError {
  path: (string | number)[];
  message: string;
}

/** The built-in model's verdict, or undefined when apiVersion+kind has no model. */
export function validateBuiltin(object: K8sObject): SchemaError[] | undefined {
  const model = BUILTIN_MODELS.get(`${object.apiVersion} ${object.kind}`);
  if (!model) return undefined;
  try {
    new model(object).validate();
    return [];
  } catch (error) {
    const errors = (error as { errors?: ErrorObject[] }).errors;
    if (!errors) return [{ path: [], message: (error as Error).message }];
    return oneErrorPerField(errors);
  }
}

/**
 * One message per field: an int-or-string or quantity field fails each branch of its oneOf, and
 * "must be number" beside "must match format quantity" helps nobody.
 */
function oneErrorPerField(errors: ErrorObject[]): SchemaError[] {
  const byPath = new Map<string, { errors: ErrorObject[]; mapped: SchemaError }>();
  for (const e of errors) {
    const mapped = toSchemaError(e);
    const key = JSON.stringify(mapped.path);
    const entry = byPath.get(key);
    if (entry) entry.errors.push(e);
    else byPath.set(key, { errors: [e], mapped });
  }
  return [...byPath.values()].map(({ errors: es, mapped }) => {
    if (es.length === 1) return mapped;
    const format = es.find((e) => e.keyword === 'format');
    if (format) return { path: mapped.path, message: (format.params as { format?: string }).format === 'quantity' ? 'must be a quantity, e.g. 512Mi, 2 or 500m' : `must match format ${(format.params as { format?: string }).format}` };
    const specific = es.find((e) => e.keyword !== 'oneOf' && e.keyword !== 'anyOf' && e.keyword !== 'type') ?? es.find((e) => e.keyword !== 'oneOf' && e.keyword !== 'anyOf') ?? es[0]!;
    return toSchemaError(specific);
  });
}

/** GA versions in any group that serve this kind: "extensions/v1beta1 Ingress" → networking.k8s.io/v1. */
export function builtinVersionsForKind(kind: string): string[] {
  return [...BUILTIN_MODELS.keys()].filter((k) => k.endsWith(` ${kind}`)).map((k) => k.split(' ')[0]!);
}

/** Whether any GA version of the group serves this kind (for "use apps/v1" hints). */
export function builtinVersionsOf(group: string, kind: string): string[] {
  return [...BUILTIN_MODELS.keys()].filter((k) => k.endsWith(` ${kind}`) && groupOf(k.split(' ')[0]!) === group).map((k) => k.split(' ')[0]!);
}

export const groupOf = (apiVersion: string): string => (apiVersion.includes('/') ? apiVersion.split('/')[0]! : '');

export const isBuiltinGroup = (group: string): boolean => [...BUILTIN_MODELS.keys()].some((k) => groupOf(k.split(' ')[0]!) === group);

function toSchemaError(e: ErrorObject): SchemaError {
  const path: (string | number)[] = e.instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'))
    .map((p) => (/^\d+$/.test(p) ? Number(p) : p));
  const params = e.params as { missingProperty?: string; additionalProperty?: string; allowedValues?: unknown[] };
  if (e.keyword === 'required' && params.missingProperty) return { path: [...path, params.missingProperty], message: 'is required' };
  if (e.keyword === 'additionalProperties' && params.additionalProperty) return { path: [...path, params.additionalProperty], message: 'is not a field of this kind' };
  if (e.keyword === 'enum' && params.allowedValues) return { path, message: `must be one of ${params.allowedValues.map((v) => JSON.stringify(v)).join(', ')}` };
  return { path, message: e.message ?? e.keyword };
}

// --- CRDs ---

export interface CrdKind {
  group: string;
  kind: string;
  /** Versions served, each with its schema. */
  versions: { name: string; schema?: unknown }[];
  namespaced: boolean;
  /** "the cert-manager add-on" or "sources/crds.yaml:1". */
  definedBy: string;
}

/** The kinds a set of CustomResourceDefinition objects defines (pure). */
export function crdKindsOf(objects: unknown[], definedBy: (o: unknown) => string): CrdKind[] {
  const out: CrdKind[] = [];
  for (const o of objects) {
    const crd = o as { apiVersion?: string; kind?: string; spec?: { group?: string; scope?: string; names?: { kind?: string }; versions?: { name: string; served?: boolean; schema?: { openAPIV3Schema?: unknown } }[] } };
    if (crd?.kind !== 'CustomResourceDefinition' || !crd.spec?.group || !crd.spec.names?.kind) continue;
    out.push({
      group: crd.spec.group,
      kind: crd.spec.names.kind,
      namespaced: crd.spec.scope !== 'Cluster',
      versions: (crd.spec.versions ?? []).filter((v) => v.served !== false).map((v) => ({ name: v.name, schema: v.schema?.openAPIV3Schema })),
      definedBy: definedBy(o),
    });
  }
  return out;
}

/** A copy of a structural schema that refuses fields it does not name (as strict field validation does). */
export function closeSchema(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(closeSchema);
  if (typeof schema !== 'object' || schema === null) return schema;
  const s = schema as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s)) out[k] = k === 'enum' || k === 'default' || k === 'example' ? v : closeSchema(v);
  const preserves = s['x-kubernetes-preserve-unknown-fields'] === true || s['x-kubernetes-embedded-resource'] === true;
  if (s.properties && s.additionalProperties === undefined && !preserves) out.additionalProperties = false;
  return out;
}

const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
const compiled = new WeakMap<object, ValidateFunction>();

/** The CRD version's verdict (compiled once per schema object). */
export function validateAgainstCrd(object: K8sObject, schema: unknown): SchemaError[] {
  if (typeof schema !== 'object' || schema === null) return [];
  let validate = compiled.get(schema);
  if (!validate) {
    // apiVersion, kind and metadata are every object's, whether the CRD's schema names them or not.
    const root = closeSchema(schema) as { properties?: Record<string, unknown> };
    validate = ajv.compile({ ...root, properties: { apiVersion: { type: 'string' }, kind: { type: 'string' }, metadata: { type: 'object' }, ...root.properties } });
    compiled.set(schema, validate);
  }
  // metadata is the API server's, not the CRD's: only its shape is checked elsewhere.
  const { metadata: _metadata, ...rest } = object;
  return validate({ ...rest, metadata: {} }) ? [] : oneErrorPerField(validate.errors ?? []);
}
