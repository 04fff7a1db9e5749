/**
 * What an apply changed (pure), from the guest script's output: per source and phase, the
 * `kubectl diff` before it (a file pair per object that changes: an empty live side means
 * created, else configured; an object the diff does not name is unchanged) and the apply's own
 * lines (`deployment.apps/web serverside-applied`), which name every object the apply touched.
 */

export type ObjectChange = 'created' | 'configured' | 'unchanged';

export interface PhaseOutput {
  phase: string;
  diff?: { text: string; exitCode: number };
  apply?: { text: string; exitCode: number };
}

export interface SourceOutput {
  name: string;
  phases: PhaseOutput[];
  complete: boolean;
}

const MARKER = /^@@labsmith (\S+)(?: (.*))?$/;

export function parseApplyOutput(stdout: string): SourceOutput[] {
  const sources: SourceOutput[] = [];
  let source: SourceOutput | undefined;
  let phase: PhaseOutput | undefined;
  let collecting: 'diff' | 'apply' | undefined;
  let lines: string[] = [];
  for (const line of stdout.split('\n')) {
    const m = MARKER.exec(line);
    if (!m) {
      if (collecting) lines.push(line);
      continue;
    }
    const [, what, rest = ''] = m;
    const args = rest.split(' ');
    if (what === 'source-begin') sources.push((source = { name: rest, phases: [], complete: false }));
    else if (what === 'source-end' && source) source.complete = true;
    else if ((what === 'diff-begin' || what === 'apply-begin') && source) {
      phase = source.phases.find((p) => p.phase === args[0]) ?? { phase: args[0]! };
      if (!source.phases.includes(phase)) source.phases.push(phase);
      collecting = what === 'diff-begin' ? 'diff' : 'apply';
      lines = [];
    } else if ((what === 'diff-end' || what === 'apply-end') && phase && collecting) {
      phase[collecting] = { text: lines.join('\n'), exitCode: Number(args[1]) };
      collecting = undefined;
    }
  }
  return sources;
}

/** kubectl diff's per-object verdicts: the object's diff name → created or configured. */
export function parseDiff(text: string): Map<string, ObjectChange> {
  const out = new Map<string, ObjectChange>();
  let current: string | undefined;
  for (const line of text.split('\n')) {
    const header = /^diff .* \S*\/LIVE-[^/\s]+\/(\S+) \S*\/MERGED-[^/\s]+\/\S+$/.exec(line);
    if (header) {
      current = header[1]!;
      out.set(current, 'configured');
      continue;
    }
    if (current && /^@@ -0,0 /.test(line)) out.set(current, 'created');
  }
  return out;
}

/** The objects an apply names: `deployment.apps/web serverside-applied` → `deployment.apps/web`. */
export function parseApplied(text: string): string[] {
  return text
    .split('\n')
    .map((l) => /^(\S+\/\S+) serverside-applied$/.exec(l.trim())?.[1])
    .filter((x): x is string => x !== undefined);
}

export interface ObjectChangeLine {
  source: string;
  object: string;
  change: ObjectChange;
}

/**
 * Per object, what changed: `known` are the objects the host planned, with their diff names and
 * display names; objects only the guest knew (a kustomization rendered there) are named as the apply named them.
 */
export function summarizeChanges(sources: SourceOutput[], known: { source: string; diffName: string; display: string }[]): ObjectChangeLine[] {
  const lines: ObjectChangeLine[] = [];
  for (const s of sources) {
    const diffs = new Map<string, ObjectChange>();
    const applied: string[] = [];
    for (const p of s.phases) {
      for (const [k, v] of parseDiff(p.diff?.text ?? '')) diffs.set(k, v);
      applied.push(...parseApplied(p.apply?.text ?? ''));
    }
    const mine = known.filter((k) => k.source === s.name);
    for (const k of mine) lines.push({ source: s.name, object: k.display, change: diffs.get(k.diffName) ?? 'unchanged' });
    const knownNames = new Set(mine.map((k) => k.diffName));
    for (const [name, change] of diffs) if (!knownNames.has(name)) lines.push({ source: s.name, object: name, change });
    // A guest-rendered object the diff did not name: applied and unchanged.
    if (!mine.length) for (const a of applied) if (![...diffs.keys()].some((d) => d.endsWith(`.${a.split('/')[1]}`))) lines.push({ source: s.name, object: a, change: 'unchanged' });
  }
  return lines;
}

export function renderChanges(lines: ObjectChangeLine[]): string {
  const counts = { created: 0, configured: 0, unchanged: 0 };
  for (const l of lines) counts[l.change]++;
  return [...lines.map((l) => `${l.change.padEnd(10)} ${l.source}: ${l.object}`), `${counts.created} created, ${counts.configured} configured, ${counts.unchanged} unchanged`].join('\n') + '\n';
}
