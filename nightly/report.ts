/** The night's report: what happened tonight (steps, profile, failure, bundle) over the image diff against the baseline. Pure. */
import type { ImageManifest } from '../images/manifest.ts';
import type { NightSummary } from './diff/load.ts';
import type { ImageDiff, NightRecord } from './diff/model.ts';
import { renderImageDiffMarkdown, renderVerdict } from './diff/render.ts';

/** GitHub's limit for one release asset. */
export const RELEASE_ASSET_LIMIT_BYTES = 2 * 1024 ** 3;
/** Above this the report (and the workflow) say the image is near that limit. */
export const RELEASE_ASSET_WARN_BYTES = Math.floor(1.8 * 1024 ** 3);

export interface NightReportInputs {
  summary: NightSummary;
  diff: ImageDiff;
  steps: { title: string; seconds: number; ok: boolean }[];
  compressedBytes?: number;
  /** Log bundles of a red night, relative to the night directory. */
  bundles: string[];
}

/** The side of the diff for a night without a baseline: nothing installed, nothing locked. */
export function emptyRecord(suite: string): NightRecord {
  const manifest: ImageManifest = { inputsHash: '', suite, sources: [], sourceDateEpoch: 0, layers: {}, files: {}, rawBytes: 0, packages: [], buildSeconds: {} };
  return { name: '(no baseline)', manifest, packages: [] };
}

export function renderNightReportMarkdown(r: NightReportInputs): string {
  const s = r.summary;
  const lines = [`# Nightly ${s.name}: ${s.green ? 'green' : 'red'}`, '', renderVerdict(s.verdict), ''];
  if (s.osOnly) lines.push(`Profile: OS-only (${s.osOnlyReason ?? 'no Kubernetes layer'}).`, '');
  if (!s.baseline) lines.push('No baseline: this is the first night in this directory (every package counts as added).', '');
  if (s.failedStep) lines.push(`**Stopped at "${s.failedStep.title}"**:`, '', '```', s.failedStep.message, '```', '');
  if (!s.green && s.verdict.failed.length) lines.push('What failed:', '', ...s.verdict.failed.map((f) => `- ${f}`), '');
  if (r.bundles.length) lines.push(`Log bundle: ${r.bundles.map((b) => `\`${b}\``).join(', ')}`, '');
  if (r.compressedBytes !== undefined && r.compressedBytes > RELEASE_ASSET_WARN_BYTES) {
    lines.push(`⚠ the compressed image is ${(r.compressedBytes / 1024 ** 3).toFixed(2)} GiB: near GitHub's 2 GiB release asset limit.`, '');
  }
  lines.push('| step | time | |', '|---|---|---|', ...r.steps.map((st) => `| ${st.title} | ${st.seconds.toFixed(1)} s | ${st.ok ? 'ok' : 'failed'} |`), '');
  // The diff's own title becomes a section of this report.
  lines.push(renderImageDiffMarkdown(r.diff).replace(/^# /, '## ').replace(/\n## /g, '\n### '));
  return lines.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd() + '\n';
}

export function renderNightReportJson(r: NightReportInputs): string {
  return JSON.stringify({ format: 1, night: r.summary, steps: r.steps, compressedBytes: r.compressedBytes, bundles: r.bundles, diff: r.diff }, null, 2) + '\n';
}
