/** Shared by the add-on renderers: the shape of a rendered object, and lookups in upstream manifests. */
import type { Document } from 'yaml';
import { LabError } from '../../core/errors.ts';

/** The loose shape every rendered Kubernetes object has; validation is by the real schemas in tests. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'labsmith' } as const;

/** A document of an upstream manifest by kind and name; a missing one means upstream changed shape. */
export function findManifestDocument(docs: Document[], kind: string, name: string, manifest: string, patcher: string): Document {
  const doc = docs.find((d) => d.get('kind') === kind && d.getIn(['metadata', 'name']) === name);
  if (!doc) throw new LabError(`${manifest} manifest has no ${kind} ${name}: upstream changed shape`, `update ${patcher}`);
  return doc;
}
