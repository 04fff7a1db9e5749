/** The image diff as Markdown (a person over coffee) and as JSON (a machine): one model, two renderers. */
import type { Figure, ImageDiff, NightVerdict } from './model.ts';

export const IMAGE_DIFF_FORMAT = 1;

export function renderImageDiffJson(diff: ImageDiff): string {
  return JSON.stringify({ format: IMAGE_DIFF_FORMAT, ...diff }, null, 2) + '\n';
}

const MiB = 1024 * 1024;

function bytes(n: number | undefined): string {
  if (n === undefined) return '—';
  return Math.abs(n) >= 1024 * MiB ? `${(n / 1024 / MiB).toFixed(2)} GiB` : `${(n / MiB).toFixed(1)} MiB`;
}

function seconds(n: number | undefined): string {
  return n === undefined ? '—' : `${n.toFixed(n < 10 ? 1 : 0)} s`;
}

function signed(n: number, unit: (x: number) => string): string {
  return `${n >= 0 ? '+' : '−'}${unit(Math.abs(n))}`;
}

function change(f: Figure | undefined, unit: (x: number) => string): string {
  if (!f || f.new === undefined) return '—';
  if (f.old === undefined || f.delta === undefined) return unit(f.new);
  return `${unit(f.new)} (${signed(f.delta, unit)}${f.significant ? '' : ', within noise'})`;
}

export function renderVerdict(v: NightVerdict | undefined): string {
  if (!v) return 'result unknown';
  const na = v.notApplicable ? `, ${v.notApplicable} not applicable (OS-only)` : '';
  return `${v.green ? '🟢 green' : '🔴 red'}: ${v.passed}/${v.total} checks passed${na}`;
}

export function renderHeadline(diff: ImageDiff): string {
  const h = diff.headline;
  const packages = `${h.upgraded} upgraded, ${h.added} added, ${h.removed} removed${h.downgraded ? `, ${h.downgraded} downgraded` : ''}`;
  return [
    renderVerdict(h.result),
    `packages: ${packages}; security updates: ${h.securityUpdates}`,
    `compressed image: ${change(h.compressedBytes, bytes)}; build: ${change(h.buildSeconds, seconds)}; boot → cloud-init: ${change(h.bootSeconds, seconds)}`,
  ].join(' · ');
}

const cell = (s: string | undefined) => (s ?? '—').replace(/\|/g, '\\|');

function figureTable(title: string, figures: Figure[], unit: (x: number) => string): string[] {
  if (!figures.length) return [];
  const rows = figures.map((f) => `| ${f.name} | ${f.old === undefined ? '—' : unit(f.old)} | ${f.new === undefined ? '—' : unit(f.new)} | ${f.delta === undefined ? '—' : signed(f.delta, unit)} | ${f.delta === undefined ? '' : f.significant ? 'changed' : 'noise'} |`);
  return [`## ${title}`, '', '| | baseline | this night | Δ | |', '|---|---|---|---|---|', ...rows, ''];
}

export function renderImageDiffMarkdown(diff: ImageDiff): string {
  const out: string[] = [`# Image diff: ${diff.old} → ${diff.new}`, '', `**${renderHeadline(diff)}**`, ''];
  const v = diff.headline.result;
  if (v && !v.green && v.failed.length) out.push('Failed:', '', ...v.failed.map((f) => `- ${f}`), '');
  for (const note of diff.notes) out.push(`> ${note}`, '');
  if (diff.headline.identicalImage) out.push('The image inputs are identical (same inputs hash): the image did not change.', '');

  if (diff.identity.length) {
    out.push('## Image', '', '| | baseline | this night |', '|---|---|---|', ...diff.identity.map((i) => `| ${i.field} | ${cell(i.old)} | ${cell(i.new)} |`), '');
  }
  out.push('## Pinned components', '');
  if (diff.pinned.length) {
    out.push('| component | baseline | this night |', '|---|---|---|');
    for (const p of diff.pinned) out.push(`| ${p.component} | ${cell(p.old)} | ${p.changed ? `**${cell(p.new)}**` : cell(p.new)} |`);
  } else out.push('None installed.');
  out.push('');

  out.push('## Security updates', '');
  if (!diff.security.length) out.push('None.', '');
  for (const s of diff.security) {
    out.push(`### ${s.source} ${s.old ?? '(new)'} → ${s.new} (${s.suite})`, '');
    out.push(`Binary packages: ${s.binaries.join(', ')}`);
    out.push(`CVEs: ${s.cves.length ? s.cves.join(', ') : 'none named'} · advisories: ${s.advisories.length ? s.advisories.join(', ') : 'none named'}`, '');
    if (s.changelogMissing) out.push(`Changelog not shown: ${s.changelogMissing}`, '');
    for (const e of s.entries) {
      out.push(`- **${e.version}** (${e.distribution}; urgency=${e.urgency}) ${e.date}`);
      for (const line of e.changes) out.push(`  ${line}`);
    }
    if (s.entries.length) out.push('');
  }

  out.push('## Package changes by source', '');
  if (!diff.packages.length) out.push('None.', '');
  else {
    out.push('| source | baseline | this night | binary packages |', '|---|---|---|---|');
    for (const g of diff.packages) {
      const binaries = g.binaries.map((b) => (b.kind === 'upgraded' || b.kind === 'downgraded' ? b.name : `${b.name} (${b.kind})`)).join(', ');
      out.push(`| ${g.source}${g.security ? ' 🔒' : ''} | ${cell(g.old)} | ${cell(g.new)} | ${binaries} |`);
    }
    out.push('');
  }

  out.push('## Container images', '');
  if (!diff.images.length) out.push('No change.', '');
  for (const i of diff.images) {
    if (i.kind === 'index-only') out.push(`- ${i.ref}: index re-pushed (${i.old!.digest} → ${i.new!.digest}), linux/amd64 manifest unchanged (${i.new!.amd64}): no change`);
    else if (i.kind === 'changed') out.push(`- ${i.ref}: linux/amd64 ${i.old!.amd64} → **${i.new!.amd64}** (index ${i.new!.digest})`);
    else out.push(`- ${i.ref}: ${i.kind} (linux/amd64 ${(i.new ?? i.old)!.amd64})`);
  }
  if (diff.images.length) out.push('');

  out.push('## Upstream manifests', '');
  if (!diff.manifests.length) out.push('No change.', '');
  for (const m of diff.manifests) out.push(`- ${m.name}: ${m.old ? `${m.old.url} (${m.old.sha256 ?? 'no sha256'})` : '—'} → ${m.new ? `${m.new.url} (${m.new.sha256 ?? 'no sha256'})` : 'removed'}`);
  if (diff.manifests.length) out.push('');

  out.push('## Other lock changes', '');
  if (!diff.lockChanges.length) out.push('None.', '');
  else out.push('```', ...diff.lockChanges, '```', '');

  out.push(...figureTable('Sizes', diff.sizes, bytes));
  out.push(...figureTable('Build time per step', diff.buildTimes, seconds));
  out.push(...figureTable('Boot', diff.bootTimes, seconds));
  return out.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd() + '\n';
}
