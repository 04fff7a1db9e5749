/**
 * Reading the workload sources (effectful): a directory of plain YAML files (`*.yaml`, `*.yml`,
 * in name order, not recursive, as `kubectl apply -f DIR`), or a kustomization rendered on the
 * host with kustomize for validation (the guest renders it again with the image's kubectl).
 * Every object keeps its file and line; a rendered object its origin file (kustomize's origin
 * annotation, removed again) and the line of its document there.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import type { WorkloadSource } from '../../config/lab-config.ts';
import { LabError } from '../../core/errors.ts';
import { buildKustomization, KUSTOMIZATION_FILES, ORIGIN_ANNOTATION, originPathOf, type HostKustomize } from './kustomize.ts';
import { parseManifestText, withoutAnnotation, type WorkloadObject, type WorkloadProblem } from './manifests.ts';

export interface LoadedSource {
  source: WorkloadSource;
  /** plain: files applied as they are; kustomization: rendered in the guest with `kubectl kustomize`. */
  format: 'plain' | 'kustomization';
  /** The manifest files of a plain source (absolute, in apply order). */
  files: string[];
  objects: WorkloadObject[];
  problems: WorkloadProblem[];
  /** A kustomization the host could not render: named, validated after rendering in the guest. */
  unrendered?: string;
  /**
   * A kustomization's files to ship: the nearest directory holding it and every file its
   * rendering came from (an overlay's `../base`), and the kustomization's path inside it.
   */
  kustomizationRoot?: { dir: string; path: string };
}

/** How a kustomization is rendered on the host: a tool, or why there is none. */
export type HostRenderer = HostKustomize | { unavailable: string };

export const isManifestFile = (name: string) => /\.ya?ml$/.test(name) && !(KUSTOMIZATION_FILES as readonly string[]).includes(name);

export async function loadWorkloadSource(source: WorkloadSource, renderer: () => Promise<HostRenderer>, opts: { displayBase?: string; signal?: AbortSignal } = {}): Promise<LoadedSource> {
  // Relative to where the user is, when the file is below it; else as it is.
  const show = (p: string) => {
    const rel = relative(opts.displayBase ?? process.cwd(), p);
    return rel && !rel.startsWith('..') ? rel : p;
  };
  const entries = await readdir(source.path).catch((e: NodeJS.ErrnoException) => {
    throw new LabError(`workload source ${source.name}: cannot read ${source.path} (${e.code})`, 'point workloads[].path in lab.yaml at a directory of manifests', 2);
  });
  const kustomization = KUSTOMIZATION_FILES.find((f) => entries.includes(f));
  if (!kustomization) {
    const files = entries.filter(isManifestFile).sort().map((f) => join(source.path, f));
    const objects: WorkloadObject[] = [];
    const problems: WorkloadProblem[] = [];
    for (const file of files) {
      const parsed = parseManifestText(await readFile(file, 'utf8'), show(file), source.name);
      objects.push(...parsed.objects);
      problems.push(...parsed.problems);
    }
    if (!files.length) problems.push({ file: show(source.path), path: '', message: 'holds no *.yaml or *.yml file (and no kustomization.yaml)' });
    return { source, format: 'plain', files, objects, problems };
  }
  const tool = await renderer();
  if ('unavailable' in tool) {
    return {
      source,
      format: 'kustomization',
      files: [],
      objects: [],
      problems: [],
      kustomizationRoot: { dir: source.path, path: '.' },
      unrendered: `${show(join(source.path, kustomization))}: not rendered on this host (${tool.unavailable}); it is validated after rendering in the guest, by the apply itself, and its rollouts are not waited for`,
    };
  }
  let built: { text: string; wrapperDir: string };
  try {
    built = await buildKustomization(tool, source.path, opts.signal);
  } catch (error) {
    return { source, format: 'kustomization', files: [], objects: [], problems: [{ file: show(join(source.path, kustomization)), path: '', message: (error as Error).message }] };
  }
  const rendered = parseManifestText(built.text, `${show(join(source.path, kustomization))} (rendered)`, source.name);
  const origins = rendered.objects.map((o) => originPathOf(o.object.metadata.annotations?.[ORIGIN_ANNOTATION])).filter((p): p is string => p !== undefined).map((p) => dirname(resolve(built.wrapperDir, p)));
  const objects = await Promise.all(rendered.objects.map((o) => locateOrigin(o, built.wrapperDir, show)));
  const root = commonAncestor([source.path, ...origins]);
  return { source, format: 'kustomization', files: [], objects, problems: rendered.problems, kustomizationRoot: { dir: root, path: relative(root, source.path) || '.' } };
}

/** The object as rendered, but named by the file and line it came from. */
async function locateOrigin(o: WorkloadObject, wrapperDir: string, show: (p: string) => string): Promise<WorkloadObject> {
  const origin = originPathOf(o.object.metadata.annotations?.[ORIGIN_ANNOTATION]);
  const object = withoutAnnotation(o.object, ORIGIN_ANNOTATION);
  const file = origin && resolve(wrapperDir, origin);
  if (!file || !existsSync(file)) return { ...o, object };
  const parsed = parseManifestText(await readFile(file, 'utf8'), show(file), o.source);
  const name = object.metadata.name;
  const match = parsed.objects.find((p) => p.object.kind === object.kind && (p.object.metadata.name === name || name.endsWith(p.object.metadata.name))) ?? parsed.objects.find((p) => p.object.kind === object.kind);
  if (!match) return { ...o, object, file: show(file) };
  // A field the overlay added has no line in the original: its nearest parent's (or the object's) line stands for it.
  return { ...o, object, file: match.file, line: match.line, lineOf: match.lineOf };
}

/** The deepest directory that holds every one of `dirs` (absolute paths; pure). */
export function commonAncestor(dirs: string[]): string {
  const split = dirs.map((d) => resolve(d).split(sep));
  const first = split[0]!;
  let n = 0;
  while (n < first.length && split.every((parts) => parts[n] === first[n])) n++;
  return first.slice(0, n).join(sep) || sep;
}
