/**
 * lab:apply: the try-a-change loop. The workloads as lab.yaml and the manifests say now,
 * validated, then applied to the running lab found by its recorded state (its driver, SSH
 * endpoint and kubeconfig), with what each object's apply changes (kubectl diff first).
 */
import { join } from 'node:path';
import { loadLabConfig } from '../../config/load.ts';
import { LabError } from '../../core/errors.ts';
import { LAB_FILES } from '../../core/paths.ts';
import type { Progress } from '../../core/progress.ts';
import { existingLabFor, renderConfigChanged } from '../existing.ts';
import { KubeClient } from '../kube/client.ts';
import { loadKubeconfig } from '../kube/kubeconfig.ts';
import { applyWorkloads } from './apply.ts';
import type { ObjectChangeLine } from './changes.ts';
import { prepareWorkloads } from './prepare.ts';
import { readCachedAddonManifests } from './upstream.ts';

export interface ReapplyOptions {
  configFile?: string;
  lockFile: string;
  progress: Progress;
  signal?: AbortSignal;
}

export async function reapplyWorkloads(opts: ReapplyOptions): Promise<ObjectChangeLine[]> {
  const configFile = opts.configFile ?? 'lab.yaml';
  // The manifests are needed (purpose create checks they exist); the host is not re-checked for a new lab.
  const config = await loadLabConfig(configFile, { purpose: 'existing' });
  const lab = await existingLabFor(config);
  const { state } = lab;
  const notRunning = new LabError(`lab ${config.name} is not running`, 'start it: npm run lab:up', 3);
  if (!state) throw notRunning;
  if (!(await lab.driver.status(state, lab.stateDir)).running) throw notRunning;
  if (!state.kubernetes) throw new LabError(`lab ${config.name} is OS-only: it has no cluster to apply workloads to`, 'boot a Kubernetes lab: npm run lab:up (without --os-only)', 2);
  const changed = renderConfigChanged(lab);
  if (changed && lab.configChanges.some((c) => !c.startsWith('workloads'))) opts.progress.warn(changed);
  if (!config.workloads.length) throw new LabError(`${configFile} lists no workloads`, 'add a workloads: entry (a directory of manifests) to lab.yaml', 2);
  const prepared = await prepareWorkloads(config, { configFile, upstream: await readCachedAddonManifests(opts.lockFile), signal: opts.signal });
  for (const note of prepared.notes) opts.progress.warn(note);
  const kube = new KubeClient(await loadKubeconfig(join(lab.stateDir, LAB_FILES.kubeconfig)));
  return applyWorkloads({ prepared, ssh: { stateDir: lab.stateDir, user: state.sshUser, ...lab.driver.sshEndpoint(state) }, kube, progress: opts.progress, diff: true, signal: opts.signal });
}
