/**
 * The acceptance suite after the upgrade against the baseline, check by check (pure): a check
 * that passed before and fails after is a regression; one that failed before and passes after
 * is reported too; a check that ran on one side only is named.
 */
import type { ReportTest, TapReport } from '../acceptance/report.ts';

export type CheckOutcome = 'pass' | 'fail' | 'skip' | 'absent';
export type CheckVerdict = 'same' | 'regressed' | 'fixed' | 'new' | 'gone';

export interface CheckComparison {
  name: string;
  before: CheckOutcome;
  after: CheckOutcome;
  verdict: CheckVerdict;
}

export interface SuiteComparison {
  /** True when nothing that passed before fails or is missing after. */
  ok: boolean;
  checks: CheckComparison[];
  regressions: string[];
}

const outcome = (t?: ReportTest): CheckOutcome => (!t ? 'absent' : t.skip ? 'skip' : t.ok ? 'pass' : 'fail');

/** Check names without the TAP numbering (`ok 3 - node-ready: …` → the name tap-parser gives). */
function byName(r: TapReport): Map<string, ReportTest> {
  return new Map(r.tests.map((t) => [t.name, t]));
}

export function compareSuiteRuns(before: TapReport, after: TapReport): SuiteComparison {
  const a = byName(before);
  const b = byName(after);
  const names = [...new Set([...a.keys(), ...b.keys()])];
  const checks = names.map((name): CheckComparison => {
    const x = outcome(a.get(name));
    const y = outcome(b.get(name));
    const verdict: CheckVerdict = x === 'absent' ? 'new' : y === 'absent' ? 'gone' : x === 'pass' && y !== 'pass' ? 'regressed' : x !== 'pass' && y === 'pass' ? 'fixed' : 'same';
    return { name, before: x, after: y, verdict };
  });
  const regressions = checks.filter((c) => c.verdict === 'regressed' || (c.verdict === 'gone' && c.before === 'pass')).map((c) => c.name);
  return { ok: regressions.length === 0 && !after.bailout, checks, regressions };
}

/** Canary sha256 per volume directory before and after: every one must be there and equal. */
export function compareCanaries(before: Record<string, string>, after: Record<string, string>): { ok: boolean; problems: string[] } {
  const problems = Object.entries(before).flatMap(([dir, sum]) => (after[dir] === undefined ? [`${dir}: the canary is gone`] : after[dir] !== sum ? [`${dir}: the canary's sha256 is ${after[dir]}, was ${sum}`] : []));
  return { ok: problems.length === 0, problems };
}

/** `sha256sum FILE…` output → directory of each file → sum. */
export function parseCanarySums(output: string, canaryName: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of output.split('\n')) {
    const m = /^([0-9a-f]{64})\s+\*?(.+)$/.exec(line.trim());
    if (m && m[2]!.endsWith(`/${canaryName}`)) out[m[2]!.slice(0, -canaryName.length - 1)] = m[1]!;
  }
  return out;
}
