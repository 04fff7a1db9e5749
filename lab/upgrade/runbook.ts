/**
 * The production runbook (pure): rendered from the plan the rehearsal ran and what it measured,
 * so production gets the exact package versions, image digests and commands, in the order that
 * worked on the replica, with how long each step took there.
 */
import type { SuiteComparison } from './compare.ts';
import type { UpgradePlan } from './plan.ts';
import { addonReleasesFor } from '../../images/kubernetes/addon-support.ts';

export interface UpgradeMeasurements {
  /** When the rehearsal ran (ISO), written by the executor. */
  rehearsedAt: string;
  labName: string;
  /** Seconds per step id. */
  stepSeconds: Record<string, number>;
  /** Seconds the disruptive steps took together: workloads restart or the API server is away within this window. */
  downtimeSeconds: number;
  comparison?: SuiteComparison;
  canaries?: { ok: boolean; problems: string[]; count: number };
}

const secs = (n: number | undefined) => (n === undefined ? '—' : n < 90 ? `${Math.round(n)} s` : `${Math.floor(n / 60)} min ${Math.round(n % 60)} s`);

export function renderRunbook(plan: UpgradePlan, m?: UpgradeMeasurements): string {
  const out: string[] = [];
  out.push(`# Runbook: Kubernetes ${plan.from} → ${plan.kubernetesVersion}`);
  out.push('');
  out.push(m
    ? `Rehearsed on the lab \`${m.labName}\` at ${m.rehearsedAt}. The steps below are the ones that ran there, in the same order; the times are the replica's (TCG or KVM), production is usually faster.`
    : 'Not rehearsed yet: this is the plan (`lab:upgrade --dry-run`). Rehearse it on the replica before production.');
  out.push('');
  if (m) {
    out.push('## Rehearsal result');
    out.push('');
    out.push(`- acceptance suite after vs before: ${m.comparison ? (m.comparison.ok ? 'no regression' : `REGRESSED: ${m.comparison.regressions.join(', ')}`) : 'not compared'}`);
    if (m.comparison) for (const c of m.comparison.checks.filter((x) => x.verdict !== 'same')) out.push(`  - ${c.name}: ${c.before} → ${c.after} (${c.verdict})`);
    out.push(`- canaries: ${m.canaries ? (m.canaries.ok ? `${m.canaries.count} intact` : m.canaries.problems.join('; ')) : 'not checked'}`);
    out.push(`- downtime window (disruptive steps): ${secs(m.downtimeSeconds)}`);
    out.push('');
  }
  out.push('## Exact inputs');
  out.push('');
  out.push('| package | version | sha256 |');
  out.push('|---|---|---|');
  for (const p of plan.packages) out.push(`| ${p.name} | ${p.version} | \`${p.sha256}\` |`);
  out.push('');
  out.push('| image | linux/amd64 digest |');
  out.push('|---|---|');
  for (const i of plan.images) out.push(`| ${i.ref} | \`${i.digest}\` |`);
  out.push('');
  out.push(`containerd: the node has ${plan.containerd.installed}; Kubernetes ${plan.to} needs ≥ ${plan.containerd.required}.${plan.containerd.target ? ` Target: ${plan.containerd.target.version} from Debian ${plan.containerd.target.suite} (sha256 \`${plan.containerd.target.sha256}\`).` : ''}`);
  out.push('');
  out.push('Add-ons (support for this minor not yet confirmed upstream where marked: the rehearsal is the proof):');
  out.push('');
  for (const a of addonReleasesFor(plan.to)) out.push(`- ${a.name} ${a.version}, ${a.when.replace(/-/g, ' ')}${a.supportChecked ? '' : ' (unconfirmed: ' + a.supportSource + ')'}: ${a.notes}`);
  out.push('');
  out.push('## Steps');
  out.push('');
  out.push('The commands are production\'s: signed network sources and the locked digests where the rehearsal used the image\'s staged payload. Take your hypervisor\'s snapshot where step 2 says "lab only".');
  out.push('');
  plan.steps.forEach((s, i) => {
    out.push(`### ${i + 1}. ${s.title}${s.disruptive ? ' (disruptive)' : ''}`);
    out.push('');
    out.push(`Rehearsal time: ${secs(m?.stepSeconds[s.id])}`);
    out.push('');
    if (s.noop) out.push(`Nothing to do: ${s.noop}.`);
    else {
      out.push('```sh');
      for (const c of s.production ?? s.commands) out.push(c);
      out.push('```');
    }
    out.push('');
  });
  out.push('## If it goes wrong');
  out.push('');
  out.push(`Before the control plane step nothing of Kubernetes has changed: fix and go on. After it, restore the rollback point: the hypervisor snapshot (lab: \`npm run lab:upgrade -- --rollback\`, tag \`${plan.snapshotTag}\`), or the etcd snapshot and the /etc/kubernetes tarball taken in step 2 with the previous packages (\`npm run lab:restore -- DIR --etcd\` describes the etcd restore).`);
  out.push('');
  return out.join('\n');
}
