/**
 * The container images a cluster needs, derived from what it runs (pure): kubeadm's list and
 * every container and init container in the rendered manifests (including pod templates kept
 * inside ConfigMaps, as local-path's helper is). Not written twice: the lock pins these by digest.
 */
import { parseAllDocuments } from 'yaml';

function collect(node: unknown, out: Set<string>): void {
  if (Array.isArray(node)) return node.forEach((n) => collect(n, out));
  if (!node || typeof node !== 'object') return;
  for (const [key, value] of Object.entries(node)) {
    if ((key === 'containers' || key === 'initContainers' || key === 'ephemeralContainers') && Array.isArray(value)) {
      for (const c of value as { image?: unknown }[]) if (typeof c?.image === 'string') out.add(c.image);
    }
    // Pod specs embedded as YAML text (ConfigMap data).
    if (typeof value === 'string' && /\bkind:\s*Pod\b/.test(value) && /\bcontainers:/.test(value)) {
      for (const doc of parseAllDocuments(value)) collect(doc.toJSON(), out);
    } else collect(value, out);
  }
}

/** Images referenced by objects or multi-document YAML texts, sorted and without duplicates. */
export function imagesInManifests(manifests: (string | object)[]): string[] {
  const out = new Set<string>();
  for (const m of manifests) {
    if (typeof m === 'string') for (const doc of parseAllDocuments(m)) collect(doc.toJSON(), out);
    else collect(m, out);
  }
  return [...out].sort();
}

/** `kubeadm config images list` output: one reference a line. */
export function parseKubeadmImageList(output: string): string[] {
  return output.split('\n').map((l) => l.trim()).filter((l) => /^[a-z0-9.-]+(\/[\w.-]+)+:[\w.-]+$/.test(l));
}

