/**
 * The log bundle a failed run leaves under the lab's report directory: the failed checks, the
 * state and events of every namespace involved, logs of pods that are not fine, the node's
 * kubelet, containerd and bootstrap journals, and the serial console. Each part is best-effort;
 * what could not be collected is listed in errors.txt.
 */
import { mkdir, readFile, writeFile as writeRawFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LAB_FILES } from '../../../core/paths.ts';
import { redact } from '../../../core/redact.ts';
import { BOOTSTRAP_UNIT } from '../../../cloud-init/bootstrap.ts';
import { resourcePath, type KubeClient } from '../../kube/client.ts';
import { podProblem, type EventObject, type PodObject } from '../../kube/readiness.ts';
import { sshRun } from '../../ssh.ts';
import type { CheckResult } from '../check.ts';
import type { AcceptanceContext } from '../context.ts';

const NODE_JOURNALS = ['kubelet', 'containerd', BOOTSTRAP_UNIT, 'labsmith-import-images.service', 'cloud-final'] as const;

/** One line per event, oldest first, all types (pure). */
function renderEvents(events: EventObject[]): string {
  const time = (e: EventObject) => e.lastTimestamp ?? e.eventTime ?? '';
  return [...events]
    .sort((a, b) => (time(a) < time(b) ? -1 : 1))
    .map((e) => `${time(e)} ${e.type ?? ''} ${e.involvedObject?.kind}/${e.involvedObject?.name} ${e.reason}: ${e.message}`)
    .join('\n') + '\n';
}

/** Every file of the bundle is redacted: pod logs, events and journals can hold a workload's secret value. */
const writeFile = (path: string, text: string) => writeRawFile(path, redact(text));
const copyFile = async (from: string, to: string) => writeFile(to, await readFile(from, 'utf8'));

/** Stops collecting when `signal` aborts (what was written stays). */
export async function writeLogBundle(dir: string, ctx: AcceptanceContext, failed: CheckResult[], namespaces: string[], signal?: AbortSignal): Promise<string> {
  await mkdir(join(dir, 'logs'), { recursive: true });
  const errors: string[] = [];
  const attempt = async (what: string, fn: () => Promise<void>) => (signal?.aborted ? Promise.resolve() : fn()).catch((e: Error) => errors.push(`${what}: ${e.message.split('\n')[0]}`));
  await writeFile(join(dir, 'failed-checks.txt'), failed.map((c) => `✗ ${c.id}: ${c.description}\n  saw: ${c.detail}\n  try: ${c.reproduce}\n  hint: ${c.hint}\n`).join('\n'));
  if (!('missing' in ctx.cluster)) {
    const kube: KubeClient = ctx.cluster.kube;
    await attempt('nodes', async () => writeFile(join(dir, 'nodes.json'), JSON.stringify(await kube.list('/api/v1/nodes', signal), null, 2)));
    for (const ns of namespaces) {
      await attempt(`pods in ${ns}`, async () => {
        const pods = await kube.list<PodObject>(resourcePath('v1', 'Pod', ns), signal);
        await writeFile(join(dir, `pods-${ns}.json`), JSON.stringify(pods, null, 2));
        // Logs of pods that are not fine: the ones a person would `kubectl logs` first.
        for (const pod of pods.filter((p) => podProblem(p) !== undefined || p.status?.phase === 'Failed')) {
          await writeFile(join(dir, 'logs', `${ns}_${pod.metadata.name}.log`), await kube.logs(ns, pod.metadata.name, signal));
        }
      });
      await attempt(`events in ${ns}`, async () => writeFile(join(dir, `events-${ns}.txt`), renderEvents(await kube.list<EventObject>(resourcePath('v1', 'Event', ns), signal))));
    }
  } else errors.push(`cluster: ${ctx.cluster.missing}`);
  if (ctx.ssh) {
    for (const unit of NODE_JOURNALS) {
      await attempt(`journal ${unit}`, async () => {
        const r = await sshRun(ctx.ssh!, ['sudo', 'journalctl', '-u', unit, '-n', '3000', '--no-pager'], { allowFailure: true, timeoutMs: 60_000, signal });
        await writeFile(join(dir, `journal-${unit.replace(/\.service$/, '')}.txt`), r.stdout || r.stderr);
      });
    }
  } else errors.push('node journals: no SSH access (server given by --host)');
  if (ctx.stateDir) await attempt('serial console', () => copyFile(join(ctx.stateDir!, LAB_FILES.serialLog), join(dir, 'serial.log')));
  if (errors.length) await writeFile(join(dir, 'errors.txt'), errors.join('\n') + '\n');
  return dir;
}
