/**
 * Workload manifests as objects that remember where they came from (pure): every YAML document of
 * a file (multi-document files, `kind: List` expanded) with its file, its first line and a lookup
 * from a field path to the line that field is on, so each problem can name file:line and path.
 */
import { isMap, isSeq, LineCounter, parseAllDocuments, type Document, type Node } from 'yaml';
import type { K8sObject } from '../../cloud-init/addons/k8s-object.ts';

export type FieldPath = (string | number)[];

export interface WorkloadObject {
  /** The workloads: entry it belongs to. */
  source: string;
  /** As shown to the user. */
  file: string;
  line: number;
  object: K8sObject;
  /** The line of a field (or of its nearest present parent). */
  lineOf: (path: FieldPath) => number;
}

/** One problem with a workload, named by file, line and field path. */
export interface WorkloadProblem {
  file: string;
  line?: number;
  /** e.g. `spec.template.spec.containers[0].image`; empty for the object as a whole. */
  path: string;
  message: string;
  /** "Deployment mail/web", when the object is known. */
  object?: string;
}

export const formatFieldPath = (path: FieldPath): string => path.reduce<string>((s, p) => (typeof p === 'number' ? `${s}[${p}]` : s ? `${s}.${p}` : p), '');

export const describeObject = (o: { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } }): string =>
  `${String(o.kind)} ${o.metadata?.namespace ? `${String(o.metadata.namespace)}/` : ''}${String(o.metadata?.name)}`;

export function formatWorkloadProblem(p: WorkloadProblem): string {
  return `${p.file}${p.line ? `:${p.line}` : ''}: ${p.object ? `${p.object}: ` : ''}${p.path ? `${p.path}: ` : ''}${p.message}`;
}

/** The line of a field's key (of an item, for a list index); a missing field gives its nearest present parent's. */
function lineLocator(doc: Document, counter: LineCounter, prefix: FieldPath, fallback: number): (path: FieldPath) => number {
  const lineAt = (n: { range?: [number, number, number] | null } | null | undefined) => (n?.range ? counter.linePos(n.range[0]).line : undefined);
  return (path) => {
    let node: unknown = doc.contents;
    let line = lineAt(node as Node) ?? fallback;
    for (const seg of [...prefix, ...path]) {
      if (isMap(node)) {
        const pair = node.items.find((p) => (p.key as { value?: unknown } | null)?.value === seg);
        if (!pair) break;
        line = lineAt(pair.key as Node) ?? line;
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number' && node.items[seg]) {
        node = node.items[seg];
        line = lineAt(node as Node) ?? line;
      } else break;
    }
    return line;
  };
}

/** Parses one file's text; documents that are empty (a trailing `---`) are skipped. */
export function parseManifestText(text: string, file: string, source: string): { objects: WorkloadObject[]; problems: WorkloadProblem[] } {
  const counter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: counter, uniqueKeys: true, prettyErrors: false });
  const objects: WorkloadObject[] = [];
  const problems: WorkloadProblem[] = [];
  for (const doc of Array.isArray(docs) ? docs : [docs]) {
    const start = doc.contents?.range ? counter.linePos(doc.contents.range[0]).line : counter.linePos(doc.range[0]).line;
    if (doc.errors.length) {
      for (const e of doc.errors) problems.push({ file, line: e.linePos?.[0].line ?? start, path: '', message: `not valid YAML: ${e.message.split('\n')[0]}` });
      continue;
    }
    if (doc.contents === null) continue;
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) continue;
    const entries: { value: unknown; prefix: FieldPath }[] = [];
    if (isListObject(value) && isMap(doc.contents) && isSeq(doc.get('items', true))) {
      value.items.forEach((item, i) => entries.push({ value: item, prefix: ['items', i] }));
    } else entries.push({ value, prefix: [] });
    for (const entry of entries) {
      const lineOf = lineLocator(doc, counter, entry.prefix, start);
      const line = lineOf([]);
      const shape = checkObjectShape(entry.value);
      if (shape.length) {
        for (const s of shape) problems.push({ file, line: lineOf(s.path), path: formatFieldPath(s.path), message: s.message });
        continue;
      }
      objects.push({ source, file, line, object: entry.value as K8sObject, lineOf });
    }
  }
  return { objects, problems };
}

function isListObject(v: unknown): v is { kind: 'List'; items: unknown[] } {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'List' && Array.isArray((v as { items?: unknown }).items);
}

/** What every object needs before any schema can be chosen for it. */
function checkObjectShape(v: unknown): { path: FieldPath; message: string }[] {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return [{ path: [], message: 'is not a Kubernetes object (a mapping with apiVersion, kind and metadata)' }];
  const o = v as Record<string, unknown>;
  const out: { path: FieldPath; message: string }[] = [];
  for (const key of ['apiVersion', 'kind'] as const) if (typeof o[key] !== 'string' || !o[key]) out.push({ path: [key], message: 'is required (a string)' });
  const meta = o.metadata as Record<string, unknown> | undefined;
  if (typeof meta !== 'object' || meta === null) out.push({ path: ['metadata'], message: 'is required (with a name)' });
  else if (typeof meta.name !== 'string' || !meta.name) out.push({ path: ['metadata', 'name'], message: meta.generateName ? 'is required: server-side apply cannot use generateName' : 'is required (a string)' });
  return out;
}

/** A copy of an object with one annotation removed (and an emptied annotations map dropped). */
export function withoutAnnotation(object: K8sObject, key: string): K8sObject {
  const annotations = { ...(object.metadata.annotations ?? {}) };
  if (!(key in annotations)) return object;
  delete annotations[key];
  const metadata = { ...object.metadata, annotations };
  if (!Object.keys(annotations).length) delete (metadata as { annotations?: unknown }).annotations;
  return { ...object, metadata };
}
