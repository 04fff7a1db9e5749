/**
 * lab.yaml → LabConfig: parse YAML, check the shape, fill defaults, validate semantics, and,
 * for commands that create something, check the host can make it (validateHostFit).
 * `parseLabConfig` is pure (host facts come in as data); `loadLabConfig` reads the file and host.
 */
import { readFile } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { ConfigError, type ConfigProblem } from '../core/errors.ts';
import { stateRoot } from '../core/paths.ts';
import { fillDefaults } from './defaults.ts';
import { readHostFacts } from './host-facts.ts';
import type { LabConfig, RegistryConfig, SecretSource, WorkloadSource } from './lab-config.ts';
import { labConfigSchema } from './schema.ts';
import { validateHostFit, validateLabConfig, type HostFacts } from './validate.ts';

export const DEFAULT_CONFIG_FILE = 'lab.yaml';

export type ParseResult = { ok: true; config: LabConfig } | { ok: false; problems: ConfigProblem[] };

/** `host`: the facts to check the config against for creating a lab; undefined skips those checks. */
export function parseLabConfig(text: string, host: HostFacts | undefined, stateRootDir: string): ParseResult {
  const validate = (config: LabConfig) => [...validateLabConfig(config), ...(host ? validateHostFit(config, host) : [])];
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) {
    return { ok: false, problems: doc.errors.map((e) => ({ path: e.linePos ? `line ${e.linePos[0].line}` : '', message: e.message.split(' at line ')[0]!.split('\n')[0]! })) };
  }
  const raw: unknown = doc.toJS() ?? {};
  const shape = labConfigSchema.safeParse(raw);
  if (shape.success) {
    const config = fillDefaults(shape.data, stateRootDir);
    const problems = validate(config);
    return problems.length ? { ok: false, problems } : { ok: true, config };
  }
  const shapeProblems = shape.error.issues.map((issue) => ({ path: issue.path.join('.') || '(top level)', message: describeIssue(issue) }));
  // Every problem at once: drop the malformed fields, then check what remains for meaning too.
  const pruned = labConfigSchema.safeParse(withoutPaths(raw, shape.error.issues));
  const semantic = pruned.success ? validate(fillDefaults(pruned.data, stateRootDir)) : [];
  const reported = new Set(shapeProblems.map((p) => p.path));
  return { ok: false, problems: [...shapeProblems, ...semantic.filter((p) => ![...reported].some((r) => p.path === r || p.path.startsWith(`${r}.`)))] };
}

/** A copy of `raw` without the fields the issues point at (unknown keys: without those keys). */
function withoutPaths(raw: unknown, issues: { path: PropertyKey[]; code: string; keys?: string[] }[]): unknown {
  const copy = structuredClone(raw);
  for (const issue of issues) {
    const targets = issue.code === 'unrecognized_keys' && issue.keys ? issue.keys.map((k) => [...issue.path, k]) : [issue.path];
    for (const path of targets) {
      if (path.length === 0) return {};
      let node = copy as Record<PropertyKey, unknown> | undefined;
      for (const key of path.slice(0, -1)) node = node?.[key] as Record<PropertyKey, unknown> | undefined;
      if (node && typeof node === 'object') delete node[path.at(-1)!];
    }
  }
  return copy;
}

function describeIssue(issue: { code: string; message: string; keys?: string[]; path: PropertyKey[] }): string {
  if (issue.code === 'unrecognized_keys' && issue.keys) return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
  return issue.message;
}

export interface LoadOptions {
  /**
   * 'create' (lab:up, image commands): also check this host can make the lab.
   * 'existing' (lab:down, lab:status, lab:ssh, test:e2e): only what the file says; a running
   * lab's own bridge or an unprivileged user must never stop its teardown.
   */
  purpose?: 'create' | 'existing';
  /** Host facts to check against (default: read from this host). */
  host?: HostFacts;
}

export async function loadLabConfig(file: string = DEFAULT_CONFIG_FILE, opts: LoadOptions = {}): Promise<LabConfig> {
  const path = resolve(file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(file, [{ path: '', message: `cannot read it (${(error as NodeJS.ErrnoException).code}): pass an existing file with --config` }]);
  }
  const host = opts.purpose === 'existing' ? undefined : (opts.host ?? (await readHostFacts()));
  const result = parseLabConfig(text, host, stateRoot());
  if (!result.ok) throw new ConfigError(file, result.problems);
  const base = dirname(path);
  const config = { ...result.config, stateDir: resolve(result.config.stateDir), workloads: resolveWorkloadPaths(result.config.workloads, base), registries: result.config.registries.map((r) => resolveRegistryPaths(r, base)) };
  // A lab being torn down or inspected needs no manifests: only commands that make or apply one check them.
  if (opts.purpose !== 'existing') {
    const missing = missingWorkloadDirs(config.workloads);
    if (missing.length) throw new ConfigError(file, missing);
  }
  return config;
}

/** Workload directories and secret files as absolute paths, relative ones against lab.yaml's directory (pure). */
export function resolveWorkloadPaths(workloads: WorkloadSource[], baseDir: string): WorkloadSource[] {
  return workloads.map((w) => ({
    ...w,
    path: resolve(baseDir, w.path),
    secrets: w.secrets.map((s) => ({ ...s, data: Object.fromEntries(Object.entries(s.data).map(([k, v]) => [k, v.file !== undefined ? { ...v, file: resolve(baseDir, v.file) } : v])) })),
  }));
}

export function missingWorkloadDirs(workloads: WorkloadSource[]): ConfigProblem[] {
  return workloads.flatMap((w, i) => (statSync(w.path, { throwIfNoEntry: false })?.isDirectory() ? [] : [{ path: `workloads.${i}.path`, message: `${w.path} is not a directory: point it at a directory of manifests (relative to lab.yaml)` }]));
}

/** Host files named in `registries:` are relative to lab.yaml's directory, as the user wrote them. */
export function resolveRegistryPaths(r: RegistryConfig, base: string): RegistryConfig {
  const source = (s: SecretSource): SecretSource => (s.file ? { file: resolve(base, s.file) } : s);
  return {
    ...r,
    ...(r.ca ? { ca: resolve(base, r.ca) } : {}),
    ...(r.credentials ? { credentials: { username: typeof r.credentials.username === 'string' ? r.credentials.username : source(r.credentials.username), password: source(r.credentials.password) } } : {}),
  };
}
