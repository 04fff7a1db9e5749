/**
 * The Secrets the workloads need, from host files or the labsmith process's environment. Values
 * are read once (`readWorkloadSecrets`), registered for redaction at once, and travel to the
 * guest only on the apply's stdin; `lab:render` shows named placeholders instead.
 */
import { readFile } from 'node:fs/promises';
import type { K8sObject } from '../../cloud-init/addons/k8s-object.ts';
import type { ConfigProblem } from '../../core/errors.ts';
import { MIN_REDACTABLE_LENGTH, registerSecretValue } from '../../core/redact.ts';
import type { WorkloadSource } from '../../config/lab-config.ts';

export interface ResolvedSecret {
  source: string;
  name: string;
  namespace: string;
  type: string;
  /** key → value (bytes as read). */
  data: Record<string, Buffer>;
  /** `workloads.0.secrets.1`, for messages. */
  fieldPath: string;
}

export const secretLabel = (name: string, key: string) => `${name}/${key}`;

/**
 * Reads every value; problems name the field path (a missing file, an unset variable, both or
 * neither given). Values are registered for redaction before anything else sees them.
 */
export async function readWorkloadSecrets(workloads: WorkloadSource[], env: NodeJS.ProcessEnv = process.env): Promise<{ secrets: ResolvedSecret[]; problems: ConfigProblem[] }> {
  const secrets: ResolvedSecret[] = [];
  const problems: ConfigProblem[] = [];
  for (const [i, source] of workloads.entries()) {
    for (const [j, s] of source.secrets.entries()) {
      const fieldPath = `workloads.${i}.secrets.${j}`;
      const data: Record<string, Buffer> = {};
      for (const [key, from] of Object.entries(s.data)) {
        const path = `${fieldPath}.data.${key}`;
        if ((from.file === undefined) === (from.env === undefined)) {
          problems.push({ path, message: 'give exactly one of file (a host file) or env (an environment variable of labsmith)' });
          continue;
        }
        let value: Buffer | undefined;
        if (from.file !== undefined) {
          value = await readFile(from.file).catch((e: NodeJS.ErrnoException) => {
            problems.push({ path: `${path}.file`, message: `cannot read ${from.file} (${e.code}): create it, or point the field at the file holding ${secretLabel(s.name, key)}` });
            return undefined;
          });
        } else if (env[from.env!] === undefined) {
          problems.push({ path: `${path}.env`, message: `environment variable ${from.env} is not set: export it before running labsmith` });
        } else value = Buffer.from(env[from.env!]!);
        if (value === undefined) continue;
        if (value.toString('utf8').replace(/\r?\n$/, '').length < MIN_REDACTABLE_LENGTH) {
          problems.push({ path, message: `the value of ${secretLabel(s.name, key)} is shorter than ${MIN_REDACTABLE_LENGTH} characters: too short to be a secret that can be redacted from logs` });
          continue;
        }
        registerSecretValue({ label: secretLabel(s.name, key), value: value.toString('utf8') });
        data[key] = value;
      }
      secrets.push({ source: source.name, name: s.name, namespace: s.namespace, type: s.type, data, fieldPath });
    }
  }
  return { secrets, problems };
}

/** The Secret objects the apply creates (pure): values base64 in `data`. */
export function renderSecretObjects(secrets: ResolvedSecret[]): K8sObject[] {
  return secrets.map((s) => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: s.name, namespace: s.namespace, labels: { 'app.kubernetes.io/managed-by': 'labsmith' } },
    type: s.type,
    data: Object.fromEntries(Object.entries(s.data).map(([k, v]) => [k, v.toString('base64')])),
  }));
}

/** What `lab:render` shows for the same Secrets (pure): a named placeholder per key, and where its value comes from. */
export function renderSecretPlaceholders(workloads: WorkloadSource[]): K8sObject[] {
  return workloads.flatMap((source) =>
    source.secrets.map((s) => ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: s.name, namespace: s.namespace, labels: { 'app.kubernetes.io/managed-by': 'labsmith' } },
      type: s.type,
      stringData: Object.fromEntries(Object.entries(s.data).map(([k, from]) => [k, `<secret ${secretLabel(s.name, k)}: from ${from.file !== undefined ? `file ${from.file}` : `env ${from.env}`}, read at lab:up>`])),
    })),
  );
}
