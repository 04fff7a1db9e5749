/**
 * The nightly's decisions, pure: which night directory this run writes, the baseline, whether
 * an unchanged lock short-circuits, the profile (OS-only when the lock has no Kubernetes
 * packages), the verdict from the acceptance results, and which old nights to prune. The run
 * (run.ts) computes this plan once and then executes it.
 */
import { OS_ONLY_REASON } from '../lab/acceptance/context.ts';
import type { StepTiming } from '../core/steps.ts';
import { withoutTerminalCodes } from '../core/text.ts';
import { renderImageLock, type ImageLock } from '../images/lock/lock.ts';
import type { NightSummary } from './diff/load.ts';
import type { NightTimings, NightVerdict } from './diff/model.ts';

/** A night directory found under DIR, with its summary when it has one. */
export interface NightEntry {
  name: string;
  summary?: NightSummary;
}

export const NIGHT_NAME = /^(\d{4}-\d{2}-\d{2})(?:-(\d+))?$/;

/** Oldest first: by date, then by the run number (`2026-12-01` < `2026-12-01-2`). */
export function sortNights<T extends { name: string }>(nights: T[]): T[] {
  const key = (n: string) => {
    const m = NIGHT_NAME.exec(n)!;
    return [m[1]!, Number(m[2] ?? 1)] as const;
  };
  return nights.filter((n) => NIGHT_NAME.test(n.name)).sort((a, b) => {
    const [da, na] = key(a.name);
    const [db, nb] = key(b.name);
    return da < db ? -1 : da > db ? 1 : na - nb;
  });
}

/** `YYYY-MM-DD` for the first run of the day, then `YYYY-MM-DD-2`, `-3`, … */
export function planNightName(today: string, existing: string[]): string {
  if (!existing.includes(today)) return today;
  let n = 2;
  while (existing.includes(`${today}-${n}`)) n++;
  return `${today}-${n}`;
}

/** The newest green night, if any. */
export function lastGreenNight(nights: NightEntry[]): NightEntry | undefined {
  return sortNights(nights).filter((n) => n.summary?.green).at(-1);
}

/** Keep the newest `keep` nights and, always, the night `latest` points to. */
export function planPrune(nights: NightEntry[], keep: number | undefined, latest: string | undefined): string[] {
  if (keep === undefined) return [];
  const sorted = sortNights(nights);
  const kept = new Set(sorted.slice(Math.max(0, sorted.length - keep)).map((n) => n.name));
  if (latest) kept.add(latest);
  return sorted.filter((n) => !kept.has(n.name)).map((n) => n.name);
}

export interface NightPlanInputs {
  /** Today's date, `YYYY-MM-DD` (UTC). */
  today: string;
  nights: NightEntry[];
  freshLock: ImageLock;
  baseline?: { name: string; lock: ImageLock };
  /** The baseline came from --baseline rather than the last green night in DIR. */
  baselineIsExplicit?: boolean;
  force: boolean;
  keep?: number;
  /** lab.yaml's kubernetes.enabled and the --os-only flag. */
  kubernetesEnabled: boolean;
  osOnlyFlag: boolean;
}

export type NightPlan =
  | { kind: 'no-change'; baseline: string; message: string }
  | {
      kind: 'build';
      night: string;
      baseline?: string;
      osOnly: boolean;
      /** Why this night is OS-only, for the report. */
      osOnlyReason?: string;
      /** Lock lines changed against the baseline (empty with --force on an unchanged lock). */
      forced: boolean;
      steps: string[];
      /** Nights removed after publishing (a green night counts itself among the kept). */
      keep?: number;
    };

export const NIGHT_STEPS = [
  'Building the image',
  'Archiving the inputs',
  'Booting the lab',
  'Running the acceptance suite',
  'Tearing down the lab',
  'Publishing the night',
] as const;

export function planNight(inputs: NightPlanInputs): NightPlan {
  const unchanged = inputs.baseline !== undefined && renderImageLock(inputs.baseline.lock) === renderImageLock(inputs.freshLock);
  if (unchanged && !inputs.force) {
    return { kind: 'no-change', baseline: inputs.baseline!.name, message: `no change: the refreshed lock equals the lock of ${inputs.baseline!.name} (the baseline: ${inputs.baselineIsExplicit ? '--baseline' : 'the last green night'}); nothing to build (--force builds anyway)` };
  }
  const noKubernetesPackages = Object.keys(inputs.freshLock.kubernetes.packages).length === 0;
  const osOnlyReason = inputs.osOnlyFlag
    ? '--os-only was given'
    : !inputs.kubernetesEnabled
      ? 'lab.yaml sets kubernetes.enabled: false'
      : noKubernetesPackages
        ? 'the lock has no Kubernetes packages (pkgs.k8s.io was not reachable when it was refreshed), so this night builds and checks the OS-only image'
        : undefined;
  return {
    kind: 'build',
    night: planNightName(inputs.today, inputs.nights.map((n) => n.name)),
    baseline: inputs.baseline?.name,
    osOnly: osOnlyReason !== undefined,
    osOnlyReason,
    forced: unchanged,
    steps: [...NIGHT_STEPS],
    keep: inputs.keep,
  };
}

/** Acceptance results → the night's verdict. On an OS-only image the cluster checks' "no Kubernetes" failures do not count. */
export function planVerdict(checks: { name: string; ok: boolean; skip?: string | false; todo?: string | false; detail?: string }[], osOnly: boolean, failedStep?: string): NightVerdict {
  const notApplicable = osOnly ? checks.filter((c) => !c.ok && c.detail === OS_ONLY_REASON) : [];
  const failed = checks.filter((c) => !c.ok && !c.todo && !notApplicable.includes(c));
  const passed = checks.filter((c) => c.ok && !c.skip).length;
  // Failure texts come from tools' output (systemctl, tofu, kubectl): the report is plain text.
  const failures = [...(failedStep ? [failedStep] : []), ...failed.map((c) => `${c.name}${c.detail ? `: ${c.detail}` : ''}`)].map(withoutTerminalCodes);
  return { green: failures.length === 0 && checks.length > 0, passed, total: checks.length, notApplicable: notApplicable.length, failed: failures, osOnly };
}

/** Step timings → the figures the report compares (seconds). */
export function planTimings(build: StepTiming[], boot: StepTiming[]): NightTimings {
  const s = (t: StepTiming[], title: string) => (t.find((x) => x.title === title)?.durationMs ?? 0) / 1000;
  const buildSeconds = Object.fromEntries(build.map((t) => [t.title, t.durationMs / 1000]));
  const bootSeconds: Record<string, number> = {};
  if (boot.some((t) => t.title === 'Booting the VM')) {
    bootSeconds.bootToSsh = s(boot, 'Booting the VM') + s(boot, 'Waiting for SSH');
    bootSeconds.bootToCloudInit = bootSeconds.bootToSsh + s(boot, 'Waiting for cloud-init') + s(boot, 'Waiting for the cluster bootstrap');
    bootSeconds.labUp = boot.reduce((sum, t) => sum + t.durationMs, 0) / 1000;
  }
  return { buildSeconds, bootSeconds };
}
