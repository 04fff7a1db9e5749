/**
 * What the apply streams to the guest (pure): the guest script, its parameter file and one
 * directory per source, as tar entries. Secrets are in it (0600): it travels only on SSH's
 * stdin into a fresh 0700 directory in the guest, removed when the script ends.
 */
import { stringify } from 'yaml';
import type { K8sObject } from '../../cloud-init/addons/k8s-object.ts';
import { renderParamFile } from '../../cloud-init/guest-params.ts';
import { BOOTSTRAP_PATHS, WORKLOAD_GUEST_FILES as F } from '../../core/paths.ts';
import type { TarWriteEntry } from '../../core/tar.ts';
import { FIELD_MANAGER, type WorkloadApplyPlan } from './plan.ts';

export const CRD_ESTABLISHED_TIMEOUT_SECONDS = 60;

export const renderYamlDocuments = (objects: K8sObject[]): string => objects.map((o) => stringify(o, { lineWidth: 0 })).join('---\n');

/**
 * The guest's receiving command: a fresh 0700 directory, the stream unpacked into it, the script
 * run, the directory removed whatever happens. A constant: no value is interpolated.
 */
export const GUEST_RECEIVE_COMMAND = `set -eu; umask 077; d=$(mktemp -d); trap 'rm -rf "$d"' EXIT; tar -x -C "$d"; sh "$d/${F.script}" "$d/${F.params}"`;

export interface PayloadInputs {
  plan: WorkloadApplyPlan;
  /** The guest script's text (lab/workloads/guest/apply-workloads.sh). */
  script: string;
  /** Show what each object's apply changes first (kubectl diff). */
  diff: boolean;
  /** Per kustomization source (by dirName): its directory's files, relative paths. */
  kustomizations: Record<string, { path: string; content: Buffer }[]>;
}

export function renderApplyPayload(inputs: PayloadInputs): TarWriteEntry[] {
  const { plan } = inputs;
  const entries: TarWriteEntry[] = [
    { path: F.script, mode: 0o700, content: Buffer.from(inputs.script) },
    {
      path: F.params,
      mode: 0o600,
      content: Buffer.from(
        renderParamFile('the workload apply', {
          WORKLOADS_SOURCES: plan.sources.map((s) => s.dirName).join(' '),
          WORKLOADS_KUBECONFIG: BOOTSTRAP_PATHS.adminKubeconfig,
          WORKLOADS_FIELD_MANAGER: FIELD_MANAGER,
          WORKLOADS_DIFF: inputs.diff ? 'yes' : 'no',
          WORKLOADS_CRD_TIMEOUT_SECONDS: CRD_ESTABLISHED_TIMEOUT_SECONDS,
        }),
      ),
    },
    { path: `${F.sourcesDir}/`, mode: 0o700 },
  ];
  for (const s of plan.sources) {
    if (!/^[0-9]{2}-[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(s.dirName)) throw new Error(`internal: source directory name ${s.dirName}`);
    const dir = `${F.sourcesDir}/${s.dirName}`;
    const file = (name: string, text: string) => entries.push({ path: `${dir}/${name}`, mode: 0o600, content: Buffer.from(text) });
    entries.push({ path: `${dir}/`, mode: 0o700 });
    file(F.sourceParams, renderParamFile(`workload source ${s.name}`, { SOURCE_NAME: s.name, SOURCE_FORMAT: s.format, SOURCE_KUSTOMIZATION: s.kustomizationRoot?.path ?? '.' }));
    if (s.first.length) file(F.first, renderYamlDocuments(s.first));
    if (s.crds.length) file(F.crds, s.crds.map((c) => `${c}\n`).join(''));
    if (s.secrets.length) file(F.secrets, renderYamlDocuments(s.secrets));
    if (s.format === 'plain' && s.objects.length) file(F.objects, renderYamlDocuments(s.objects));
    if (s.format === 'kustomization') {
      const files = inputs.kustomizations[s.dirName];
      if (!files) throw new Error(`internal: no files for kustomization source ${s.name}`);
      entries.push({ path: `${dir}/${F.kustomization}/`, mode: 0o700 });
      for (const f of files) entries.push({ path: `${dir}/${F.kustomization}/${f.path}`, mode: 0o600, content: f.content });
    }
  }
  return entries;
}
