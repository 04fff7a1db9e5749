/** The nightly's pure plan: night names, baseline, the no-change short-circuit, profile, verdict, pruning, the report. */
import test from 'ava';
import type { ImageLock } from '../../images/lock/lock.ts';
import { OS_ONLY_REASON } from '../../lab/acceptance/context.ts';
import type { NightSummary } from '../../nightly/diff/load.ts';
import { planImageDiff } from '../../nightly/diff/model.ts';
import { lastGreenNight, planNight, planNightName, planPrune, planTimings, planVerdict, sortNights, type NightEntry } from '../../nightly/plan.ts';
import { emptyRecord, renderNightReportMarkdown, RELEASE_ASSET_WARN_BYTES } from '../../nightly/report.ts';
import { nightlyLabConfig } from '../../nightly/run.ts';
import { throwawayLabConfig, withTempDir } from '../helpers.ts';

const lock = (date: string, k8s = false): ImageLock => ({
  lockVersion: 1,
  debian: { suite: 'trixie', releases: { trixie: { uri: 'http://deb.debian.org/debian', sha256: 'a'.repeat(64), date } } },
  kubernetes: { minor: '1.37', repository: 'r', keyring: { url: 'k', fingerprint: 'F' }, packages: k8s ? { kubelet: { url: 'u', sha256: 'b'.repeat(64), version: '1.37.1-1.1' } } : {} },
  manifests: {},
  images: {},
});

const summary = (name: string, green: boolean): NightSummary => ({
  name, date: '', green, verdict: { green, passed: 1, total: 1, notApplicable: 0, failed: [], osOnly: true }, timings: { buildSeconds: {}, bootSeconds: {} }, osOnly: true, lockSha256: '',
});
const nights: NightEntry[] = [
  { name: '2026-11-30', summary: summary('2026-11-30', true) },
  { name: '2026-12-01-2', summary: summary('2026-12-01-2', false) },
  { name: '2026-12-01', summary: summary('2026-12-01', true) },
  { name: 'latest' },
  { name: '2026-11-29' },
];

test('night names: one directory per night, -N for more runs on a day, ordered by date then run', (t) => {
  t.is(planNightName('2026-12-02', ['2026-12-01']), '2026-12-02');
  t.is(planNightName('2026-12-01', ['2026-12-01']), '2026-12-01-2');
  t.is(planNightName('2026-12-01', ['2026-12-01', '2026-12-01-2']), '2026-12-01-3');
  t.deepEqual(sortNights(nights).map((n) => n.name), ['2026-11-29', '2026-11-30', '2026-12-01', '2026-12-01-2']);
  t.is(lastGreenNight(nights)?.name, '2026-12-01', 'a red night is never the baseline');
});

test('pruning keeps the newest N and the night latest points to', (t) => {
  t.deepEqual(planPrune(nights, 2, '2026-12-01'), ['2026-11-29', '2026-11-30']);
  t.deepEqual(planPrune(nights, 1, '2026-11-30'), ['2026-11-29', '2026-12-01']);
  t.deepEqual(planPrune(nights, undefined, undefined), []);
});

test('plan: an unchanged lock is "no change" unless --force; a changed one builds the next night', (t) => {
  const base = { today: '2026-12-01', nights, kubernetesEnabled: true, osOnlyFlag: false, force: false };
  const same = planNight({ ...base, freshLock: lock('d1'), baseline: { name: '2026-12-01', lock: lock('d1') } });
  t.is(same.kind, 'no-change');
  t.regex((same as { message: string }).message, /no change: the refreshed lock equals the lock of 2026-12-01 \(the baseline: the last green night\)/);
  const explicit = planNight({ ...base, baselineIsExplicit: true, freshLock: lock('d1'), baseline: { name: '2026-11-29', lock: lock('d1') } });
  t.regex((explicit as { message: string }).message, /lock of 2026-11-29 \(the baseline: --baseline\)/);
  const forced = planNight({ ...base, force: true, freshLock: lock('d1'), baseline: { name: '2026-12-01', lock: lock('d1') } });
  t.like(forced, { kind: 'build', night: '2026-12-01-3', baseline: '2026-12-01', forced: true, osOnly: true });
  const changed = planNight({ ...base, freshLock: lock('d2'), baseline: { name: '2026-12-01', lock: lock('d1') } });
  t.like(changed, { kind: 'build', forced: false });
  t.like(planNight({ ...base, nights: [], freshLock: lock('d1') }), { kind: 'build', night: '2026-12-01', baseline: undefined }, 'no baseline: the first night builds');
});

test('plan: OS-only when the lock has no Kubernetes packages, with --os-only, or with kubernetes.enabled: false, saying which', (t) => {
  const base = { today: '2026-12-01', nights: [], force: false };
  const reason = (p: ReturnType<typeof planNight>) => (p.kind === 'build' ? [p.osOnly, p.osOnlyReason] : undefined);
  t.deepEqual(reason(planNight({ ...base, freshLock: lock('d', true), kubernetesEnabled: true, osOnlyFlag: false })), [false, undefined]);
  t.regex(String(reason(planNight({ ...base, freshLock: lock('d'), kubernetesEnabled: true, osOnlyFlag: false }))?.[1]), /the lock has no Kubernetes packages/);
  t.is(reason(planNight({ ...base, freshLock: lock('d', true), kubernetesEnabled: true, osOnlyFlag: true }))?.[1], '--os-only was given');
  t.is(reason(planNight({ ...base, freshLock: lock('d', true), kubernetesEnabled: false, osOnlyFlag: false }))?.[1], 'lab.yaml sets kubernetes.enabled: false');
});

test('verdict: on an OS-only image only the cluster checks\' "no Kubernetes" failures are not applicable', (t) => {
  const checks = [
    { name: 'ssh answers', ok: true },
    { name: 'node Ready', ok: false, detail: OS_ONLY_REASON },
    { name: 'pods Ready', ok: false, detail: OS_ONLY_REASON },
  ];
  t.deepEqual(planVerdict(checks, true), { green: true, passed: 1, total: 3, notApplicable: 2, failed: [], osOnly: true });
  t.like(planVerdict(checks, false), { green: false, notApplicable: 0, failed: [`node Ready: ${OS_ONLY_REASON}`, `pods Ready: ${OS_ONLY_REASON}`] });
  t.like(planVerdict([...checks, { name: 'placeholder 404', ok: false, detail: 'connection refused' }], true), { green: false, failed: ['placeholder 404: connection refused'] });
  t.like(planVerdict([], true, 'Booting the lab: SSH never answered'), { green: false, total: 0, failed: ['Booting the lab: SSH never answered'] });
  t.like(planVerdict([], true), { green: false }, 'no checks ran: not green');
  // A tool's coloured output (systemctl, tofu) reaches the report as plain text.
  t.like(planVerdict([], true, 'Booting the lab: \x1b[0;1;31mfailed\x1b[0m (\x1b]8;;file://x\x07link\x1b]8;;\x07)'), { failed: ['Booting the lab: failed (link)'] });
});

test('timings: per build step, and boot → SSH / → cloud-init from lab:up\'s steps', (t) => {
  const timings = planTimings(
    [{ title: 'Building OS layer', durationMs: 3000, ok: true }],
    [{ title: 'Booting the VM', durationMs: 2000, ok: true }, { title: 'Waiting for SSH', durationMs: 50_000, ok: true }, { title: 'Waiting for cloud-init', durationMs: 30_000, ok: true }, { title: 'Running checks', durationMs: 10_000, ok: true }],
  );
  t.deepEqual(timings, { buildSeconds: { 'Building OS layer': 3 }, bootSeconds: { bootToSsh: 52, bootToCloudInit: 82, labUp: 92 } });
});

test('a red night\'s report says where it stopped, what failed, and where the log bundle is', (t) => {
  const s: NightSummary = { ...summary('2026-12-02', false), verdict: { green: false, passed: 3, total: 4, notApplicable: 0, failed: ['placeholder 404: refused'], osOnly: true }, osOnlyReason: 'the lock has no Kubernetes packages', failedStep: { title: 'Booting the lab', message: 'SSH never answered' }, baseline: '2026-12-01' };
  const diff = planImageDiff({ old: emptyRecord('trixie'), new: emptyRecord('trixie'), changelogs: {} });
  const md = renderNightReportMarkdown({ summary: s, diff, steps: [{ title: 'Booting the lab', seconds: 12, ok: false }], bundles: ['bundle-boot'], compressedBytes: RELEASE_ASSET_WARN_BYTES + 1 });
  t.regex(md, /^# Nightly 2026-12-02: red\n\n🔴 red: 3\/4 checks passed/);
  t.regex(md, /Profile: OS-only \(the lock has no Kubernetes packages\)/);
  t.regex(md, /\*\*Stopped at "Booting the lab"\*\*:\n\n```\nSSH never answered\n```/);
  t.regex(md, /- placeholder 404: refused/);
  t.regex(md, /Log bundle: `bundle-boot`/);
  t.regex(md, /near GitHub's 2 GiB release asset limit/);
  t.regex(md, /\| Booting the lab \| 12\.0 s \| failed \|/);
  t.regex(md, /\n## Image diff: /, 'the diff is a section of the report');
});

test('the night\'s lab has its own name and state directory', async (t) => {
  await withTempDir(async (dir) => {
    const config = await throwawayLabConfig('nl', dir);
    const lab = nightlyLabConfig(config, '/srv/nights/.work');
    t.is(lab.name, 'nl-nightly');
    t.is(lab.stateDir, '/srv/nights/.work/lab');
    t.is(config.name, 'nl', 'the user\'s config is not changed');
  });
});
