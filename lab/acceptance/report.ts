/**
 * TAP → a one-screen summary, JUnit XML and JSON. The TAP may come from our own checks or
 * from any producer (ava --tap); tap-parser reads it either way.
 */
import { Parser } from 'tap-parser';

export interface ReportTest {
  id: number;
  name: string;
  ok: boolean;
  skip: string | false;
  todo: string | false;
  durationMs: number | null;
  diag: Record<string, unknown> | null;
}

export interface TapReport {
  ok: boolean;
  count: number;
  pass: number;
  fail: number;
  skip: number;
  todo: number;
  bailout: string | false;
  tests: ReportTest[];
}

export function parseTap(tap: string): Promise<TapReport> {
  return new Promise((resolve) => {
    const tests: ReportTest[] = [];
    const parser = new Parser((final) => {
      // tap-parser counts a failing TODO as a failure; a known gap is not one here.
      const failed = tests.filter((t) => !t.ok && !t.todo).length;
      resolve({
        ok: final.ok,
        count: final.count,
        pass: tests.filter((t) => t.ok && !t.skip).length,
        fail: failed,
        skip: final.skip,
        todo: final.todo,
        bailout: final.bailout === false ? false : String(final.bailout === true ? 'bail out' : final.bailout),
        tests,
      });
    });
    parser.on('assert', (r) => {
      tests.push({
        id: r.id,
        name: r.name,
        ok: r.ok,
        skip: r.skip === false ? false : r.skip === true ? 'skipped' : String(r.skip),
        todo: r.todo === false ? false : r.todo === true ? 'todo' : String(r.todo),
        durationMs: r.time ?? (typeof r.diag?.duration_ms === 'number' ? r.diag.duration_ms : null),
        diag: r.diag ?? null,
      });
    });
    parser.end(tap);
  });
}

/** `N passed, N failed, N skipped`: the closing line CI reads. Todos count as skipped, a bailout as a failure. */
export function renderCountsLine(r: TapReport): string {
  const skipped = r.skip + r.todo;
  return `${r.pass} passed, ${r.fail + (r.bailout ? 1 : 0)} failed${skipped ? `, ${skipped} skipped` : ''}`;
}

export function renderSummary(r: TapReport, title: string): string {
  const lines = [`${title}`];
  for (const t of r.tests) {
    const mark = t.skip ? '-' : t.ok ? '✓' : t.todo ? '~' : '✗';
    const time = t.durationMs !== null ? ` (${(t.durationMs / 1000).toFixed(1)}s)` : '';
    lines.push(`  ${mark} ${t.name}${t.skip ? ` [skipped: ${t.skip}]` : ''}${time}`);
    if (!t.ok && !t.todo && t.diag) {
      if (t.diag.detail) lines.push(`      saw:  ${String(t.diag.detail)}`);
      if (t.diag.hint) lines.push(`      hint: ${String(t.diag.hint)}`);
      if (t.diag.reproduce) lines.push(`      try:  ${String(t.diag.reproduce)}`);
    }
  }
  if (r.bailout) lines.push(`  bailed out: ${r.bailout}`);
  lines.push(renderCountsLine(r));
  return lines.join('\n') + '\n';
}

function xmlEscape(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

export function renderJunit(r: TapReport, suiteName: string): string {
  const totalMs = r.tests.reduce((s, t) => s + (t.durationMs ?? 0), 0);
  const failures = r.tests.filter((t) => !t.ok && !t.todo).length;
  const cases = r.tests.map((t) => {
    const attrs = `name="${xmlEscape(t.name)}" classname="${xmlEscape(suiteName)}" time="${((t.durationMs ?? 0) / 1000).toFixed(3)}"`;
    if (t.skip || t.todo) return `    <testcase ${attrs}>\n      <skipped message="${xmlEscape(String(t.skip || t.todo))}"/>\n    </testcase>`;
    if (t.ok) return `    <testcase ${attrs}/>`;
    const message = String(t.diag?.detail ?? 'failed');
    const body = t.diag ? Object.entries(t.diag).map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`).join('\n') : '';
    return `    <testcase ${attrs}>\n      <failure message="${xmlEscape(message)}">${xmlEscape(body)}</failure>\n    </testcase>`;
  });
  if (r.bailout) cases.push(`    <testcase name="bail out" classname="${xmlEscape(suiteName)}" time="0">\n      <error message="${xmlEscape(String(r.bailout))}"/>\n    </testcase>`);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites tests="${r.tests.length}" failures="${failures}" errors="${r.bailout ? 1 : 0}" time="${(totalMs / 1000).toFixed(3)}">`,
    `  <testsuite name="${xmlEscape(suiteName)}" tests="${r.tests.length}" failures="${failures}" errors="${r.bailout ? 1 : 0}" skipped="${r.skip + r.todo}" time="${(totalMs / 1000).toFixed(3)}">`,
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}

export function renderJsonReport(r: TapReport): string {
  return JSON.stringify(
    {
      ok: r.ok,
      counts: { total: r.count, pass: r.pass, fail: r.fail, skip: r.skip, todo: r.todo },
      bailout: r.bailout,
      checks: r.tests.map((t) => ({ name: t.name, ok: t.ok, skip: t.skip, todo: t.todo, durationMs: t.durationMs, ...(t.diag ?? {}) })),
    },
    null,
    2,
  ) + '\n';
}
