/**
 * image:diff: Debian version order against dpkg itself, changelog parsing, the diff model on two
 * nights that differ in every section, and both renderers against golden files.
 */
import test from 'ava';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../core/exec.ts';
import type { ImageLock } from '../../images/lock/lock.ts';
import type { ImageManifest } from '../../images/manifest.ts';
import { advisoryIds, changelogEntriesBetween, parseDebianChangelog } from '../../nightly/diff/changelog.ts';
import { compareDebianVersions } from '../../core/debian-version.ts';
import { figure, planImageDiff, THRESHOLDS, type NightRecord, type PackageRecord } from '../../nightly/diff/model.ts';
import { renderImageDiffJson, renderImageDiffMarkdown } from '../../nightly/diff/render.ts';
import { packageRecords, securityFirst, suiteIndex } from '../../nightly/packages.ts';
import { missingCommand, testUnless } from '../helpers.ts';

const VERSION_PAIRS: [string, string][] = [
  ['1.0', '1.0'], ['1.0', '1.1'], ['1.0~rc1', '1.0'], ['1.0~rc1', '1.0~rc2'], ['1.0~~', '1.0~'], ['1.0', '1.0+b1'],
  ['1:1.0', '2.0'], ['0:1.0', '1.0'], ['1.0-1', '1.0-1+deb13u1'], ['3.5.1-1~deb13u1', '3.5.1-1'], ['3.5.1-1~deb13u1', '3.5.4-1~deb13u1'],
  ['257.8-1~deb13u2', '257.9-1~deb13u1'], ['6.12.43-1', '6.12.48-1'], ['1.2.3a', '1.2.3'], ['1.2.3', '1.2.3.0'], ['1.02', '1.2'],
  ['a', 'A'], ['1.0-1', '1.0-01'], ['2:9.6p1-3', '1:10.0p1-1'], ['1.0+dfsg', '1.0-dfsg'], ['1.0.', '1.0+'], ['10', '9'],
  ['1.0-1.1', '1.0-1a'], ['1~', '1'], ['1.0-1~bpo1', '1.0-1'], ['0.0.0', '0'],
];

testUnless(missingCommand('dpkg'), 'Debian version order agrees with dpkg --compare-versions', async (t) => {
  for (const [a, b] of VERSION_PAIRS) {
    const mine = compareDebianVersions(a, b);
    const dpkg = (await run('dpkg', ['--compare-versions', a, 'lt', b], { allowFailure: true })).exitCode === 0 ? -1 : (await run('dpkg', ['--compare-versions', a, 'eq', b], { allowFailure: true })).exitCode === 0 ? 0 : 1;
    t.is(mine, dpkg, `${a} vs ${b}`);
    t.is(compareDebianVersions(b, a) as number, -dpkg || 0, `${b} vs ${a}`);
  }
});

const CHANGELOG = `openssl (3.5.4-1~deb13u1) trixie-security; urgency=medium

  * Import 3.5.4
    - CVE-2026-1001 (Out-of-bounds read in HTTP client).
    - CVE-2026-1002, cve-2026-10003.
  * DSA-6001-1

 -- Debian Security Team <team@security.debian.org>  Sat, 28 Nov 2026 10:00:00 +0000

openssl (3.5.1-1+deb13u2) trixie; urgency=medium

  * Fix a timing side channel (CVE-2026-0900), DLA-4001-1.

 -- Maintainer <m@debian.org>  Mon, 02 Nov 2026 10:00:00 +0000

openssl (3.5.1-1+deb13u1) trixie; urgency=medium

  * Fix CVE-2025-9999.

 -- Maintainer <m@debian.org>  Mon, 05 Oct 2026 10:00:00 +0000
`;

test('Debian changelog: entries between two versions and the CVE and DSA/DLA ids they name', (t) => {
  const entries = parseDebianChangelog(CHANGELOG);
  t.deepEqual(entries.map((e) => [e.source, e.version, e.distribution, e.urgency, e.date]), [
    ['openssl', '3.5.4-1~deb13u1', 'trixie-security', 'medium', 'Sat, 28 Nov 2026 10:00:00 +0000'],
    ['openssl', '3.5.1-1+deb13u2', 'trixie', 'medium', 'Mon, 02 Nov 2026 10:00:00 +0000'],
    ['openssl', '3.5.1-1+deb13u1', 'trixie', 'medium', 'Mon, 05 Oct 2026 10:00:00 +0000'],
  ]);
  const between = changelogEntriesBetween(entries, '3.5.1-1+deb13u1', '3.5.4-1~deb13u1');
  t.deepEqual(between.map((e) => e.version), ['3.5.4-1~deb13u1', '3.5.1-1+deb13u2']);
  t.deepEqual(advisoryIds(between), { cves: ['CVE-2026-0900', 'CVE-2026-1001', 'CVE-2026-1002', 'CVE-2026-10003'], advisories: ['DLA-4001-1', 'DSA-6001-1'] });
  t.deepEqual(changelogEntriesBetween(entries, '3.5.4-1~deb13u1', '3.5.4-1~deb13u1'), [], 'no entries when nothing changed');
  t.deepEqual(changelogEntriesBetween(entries, undefined, '3.5.1-1+deb13u2').map((e) => e.version), ['3.5.1-1+deb13u2'], 'a new package: only the entry of its version');
});

test('package origins: source from dpkg status, suite from the index that lists the exact version', (t) => {
  const status = [
    'Package: libssl3t64\nStatus: install ok installed\nVersion: 3.5.4-1~deb13u1\nArchitecture: amd64\nSource: openssl',
    'Package: bash\nStatus: install ok installed\nVersion: 5.2.37-2+b5\nArchitecture: amd64\nSource: bash (5.2.37-2)',
    'Package: gone\nStatus: deinstall ok config-files\nVersion: 1\nArchitecture: amd64',
  ].join('\n\n');
  const security = suiteIndex('trixie-security', [{ name: 'libssl3t64', version: '3.5.4-1~deb13u1', architecture: 'amd64', filename: 'pool/updates/main/o/openssl/libssl3t64_3.5.4-1~deb13u1_amd64.deb', bytes: 10, sha256: 'a'.repeat(64) }]);
  const updates = suiteIndex('trixie-updates', [{ name: 'libssl3t64', version: '3.5.4-1~deb13u1', architecture: 'amd64', filename: 'x', bytes: 1, sha256: 'b'.repeat(64) }]);
  t.deepEqual(packageRecords(status, securityFirst([updates, security]), (name) => (name === 'bash' ? 'elsewhere' : undefined)), [
    { name: 'bash', version: '5.2.37-2+b5', architecture: 'amd64', source: 'bash', sourceVersion: '5.2.37-2', suite: 'elsewhere' },
    { name: 'libssl3t64', version: '3.5.4-1~deb13u1', architecture: 'amd64', source: 'openssl', sourceVersion: '3.5.4-1~deb13u1', suite: 'trixie-security' },
  ], 'a version in both security and updates is a security update');
});

test('noise thresholds: a change counts only above both the absolute and the relative bound', (t) => {
  t.false(figure('x', 100, 108, THRESHOLDS.seconds).significant, '8 s is below 10 s');
  t.false(figure('x', 300, 340, THRESHOLDS.seconds).significant, '40 s on 300 s is below 20 %');
  t.true(figure('x', 300, 400, THRESHOLDS.seconds).significant);
  t.false(figure('x', 500e6, 500.5e6, THRESHOLDS.bytes).significant, 'half a MB is noise');
  t.true(figure('x', 500e6, 520e6, THRESHOLDS.bytes).significant);
  t.is(figure('x', undefined, 5, THRESHOLDS.bytes).delta, undefined);
});

const pkg = (name: string, version: string, source = name, suite = 'trixie', sourceVersion = version): PackageRecord => ({ name, version, architecture: 'amd64', source, sourceVersion, suite });

function manifest(over: Partial<ImageManifest>): ImageManifest {
  return { inputsHash: 'a'.repeat(64), suite: 'trixie', sources: [], sourceDateEpoch: 1, layers: {}, files: {}, rawBytes: 0, packages: [], buildSeconds: {}, ...over };
}

function lock(over: { date: string; images: ImageLock['images']; calico: string; extra?: boolean }): ImageLock {
  return {
    lockVersion: 1,
    debian: { suite: 'trixie', releases: { 'trixie-security': { uri: 'http://deb.debian.org/debian-security', sha256: (over.date === 'old' ? '1' : '2').repeat(64), date: over.date } } },
    kubernetes: { minor: '1.37', repository: 'https://pkgs.k8s.io/core:/stable:/v1.37/deb/', keyring: { url: 'k', fingerprint: 'F' }, packages: {} },
    manifests: { calico: { url: 'https://example.invalid/calico.yaml', sha256: over.calico }, ...(over.extra ? { extra: { url: 'https://example.invalid/extra.yaml', sha256: 'e'.repeat(64) } } : {}) },
    images: over.images,
  };
}

const digest = (c: string) => `sha256:${c.repeat(64)}`;

export const OLD_NIGHT: NightRecord = {
  name: '2026-11-30',
  manifest: manifest({ inputsHash: '1'.repeat(64), rawBytes: 2_000_000_000, files: { 'disk.qcow2': { bytes: 900_000_000, sha256: '' }, 'disk-compressed.qcow2': { bytes: 400_000_000, sha256: '' } } }),
  packages: [
    pkg('libssl3t64', '3.5.1-1+deb13u1', 'openssl'), pkg('openssl', '3.5.1-1+deb13u1'), pkg('systemd', '257.8-1~deb13u2'), pkg('libsystemd0', '257.8-1~deb13u2', 'systemd'),
    pkg('linux-image-6.12.43+deb13-amd64', '6.12.43-1', 'linux'), pkg('cloud-init', '25.1.4-1'), pkg('openssh-server', '1:10.0p1-7', 'openssh'), pkg('old-tool', '1.0-1'),
  ],
  lock: lock({ date: 'old', calico: 'c'.repeat(64), images: { 'registry.k8s.io/pause:3.10': { digest: digest('1'), amd64: digest('2') }, 'docker.io/traefik:v3': { digest: digest('3'), amd64: digest('4') } } }),
  verdict: { green: true, passed: 12, total: 30, notApplicable: 18, failed: [], osOnly: true },
  timings: { buildSeconds: { 'Building OS layer': 300, 'Building disk image': 60 }, bootSeconds: { bootToSsh: 100, bootToCloudInit: 160 } },
};

export const NEW_NIGHT: NightRecord = {
  name: '2026-12-01',
  manifest: manifest({ inputsHash: '2'.repeat(64), rawBytes: 2_000_100_000, files: { 'disk.qcow2': { bytes: 930_000_000, sha256: '' }, 'disk-compressed.qcow2': { bytes: 412_000_000, sha256: '' } } }),
  packages: [
    pkg('libssl3t64', '3.5.4-1~deb13u1', 'openssl', 'trixie-security'), pkg('openssl', '3.5.4-1~deb13u1', 'openssl', 'trixie-security'), pkg('systemd', '257.9-1~deb13u1', 'systemd', 'trixie-updates'),
    pkg('libsystemd0', '257.9-1~deb13u1', 'systemd', 'trixie-updates'), pkg('linux-image-6.12.48+deb13-amd64', '6.12.48-1', 'linux', 'trixie-security'), pkg('cloud-init', '25.1.4-1'),
    pkg('openssh-server', '1:10.0p1-7', 'openssh'), pkg('new-tool', '2.0-1'),
  ],
  lock: lock({ date: 'new', calico: 'd'.repeat(64), extra: true, images: { 'registry.k8s.io/pause:3.10': { digest: digest('5'), amd64: digest('2') }, 'docker.io/traefik:v3': { digest: digest('6'), amd64: digest('7') } } }),
  verdict: { green: true, passed: 12, total: 30, notApplicable: 18, failed: [], osOnly: true },
  timings: { buildSeconds: { 'Building OS layer': 420, 'Building disk image': 64 }, bootSeconds: { bootToSsh: 104, bootToCloudInit: 166 } },
};

const LINUX_CHANGELOG = `linux (6.12.48-1) trixie-security; urgency=high

  * New upstream stable update. Fixes CVE-2026-2001.

 -- Kernel Team <k@debian.org>  Fri, 27 Nov 2026 10:00:00 +0000

linux (6.12.43-1) trixie; urgency=medium

  * Old.

 -- Kernel Team <k@debian.org>  Fri, 01 Aug 2026 10:00:00 +0000
`;

const DIFF = planImageDiff({ old: OLD_NIGHT, new: NEW_NIGHT, changelogs: { openssl: parseDebianChangelog(CHANGELOG), linux: parseDebianChangelog(LINUX_CHANGELOG) } });

test('diff model: grouped by source, security from the security suite only, images by platform digest', (t) => {
  t.like(DIFF.headline, { upgraded: 4, added: 2, removed: 2, downgraded: 0, securityUpdates: 2, identicalImage: false });
  t.deepEqual(DIFF.packages.map((g) => [g.source, g.kind, g.old, g.new, g.security, g.binaries.length]), [
    ['linux', 'upgraded', '6.12.43-1', '6.12.48-1', true, 2],
    ['new-tool', 'added', undefined, '2.0-1', false, 1],
    ['old-tool', 'removed', '1.0-1', undefined, false, 1],
    ['openssl', 'upgraded', '3.5.1-1+deb13u1', '3.5.4-1~deb13u1', true, 2],
    ['systemd', 'upgraded', '257.8-1~deb13u2', '257.9-1~deb13u1', false, 2],
  ]);
  t.deepEqual(DIFF.security.map((s) => [s.source, s.cves, s.advisories, s.entries.map((e) => e.version)]), [
    ['linux', ['CVE-2026-2001'], [], ['6.12.48-1']],
    ['openssl', ['CVE-2026-0900', 'CVE-2026-1001', 'CVE-2026-1002', 'CVE-2026-10003'], ['DLA-4001-1', 'DSA-6001-1'], ['3.5.4-1~deb13u1', '3.5.1-1+deb13u2']],
  ]);
  t.deepEqual(DIFF.pinned.map((p) => [p.component, p.old, p.new, p.changed]), [
    ['kernel', 'linux-image-6.12.43+deb13-amd64 6.12.43-1', 'linux-image-6.12.48+deb13-amd64 6.12.48-1', true],
    ['systemd', '257.8-1~deb13u2', '257.9-1~deb13u1', true],
    ['cloud-init', '25.1.4-1', '25.1.4-1', false],
    ['openssh', '1:10.0p1-7', '1:10.0p1-7', false],
  ]);
  t.deepEqual(DIFF.images.map((i) => [i.ref, i.kind]), [['docker.io/traefik:v3', 'changed'], ['registry.k8s.io/pause:3.10', 'index-only']]);
  t.deepEqual(DIFF.manifests.map((m) => [m.name, m.kind]), [['calico', 'changed'], ['extra', 'added']]);
  t.deepEqual(DIFF.lockChanges, [`~ debian.releases.trixie-security.sha256: ${'1'.repeat(64)} → ${'2'.repeat(64)}`, '~ debian.releases.trixie-security.date: old → new']);
  t.deepEqual(DIFF.sizes.map((s) => [s.name, s.significant]), [['raw', false], ['qcow2', true], ['compressed', true]]);
  t.deepEqual(DIFF.buildTimes.map((s) => [s.name, s.delta, s.significant]), [['Building OS layer', 120, true], ['Building disk image', 4, false]]);
  t.true(DIFF.bootTimes.every((b) => !b.significant), 'a few seconds of boot time are noise');
  t.deepEqual(DIFF.identity.map((i) => i.field), ['inputsHash'], 'same build time and no recorded sha256: only the inputs hash differs');
});

test('a security package without a readable changelog says why instead of showing nothing', (t) => {
  const diff = planImageDiff({ old: OLD_NIGHT, new: NEW_NIGHT, changelogs: { openssl: { missing: 'no .deb of openssl 3.5.4-1~deb13u1 in /x' } } });
  t.deepEqual(diff.security.map((s) => [s.source, s.changelogMissing]), [['linux', 'no changelog was read for it'], ['openssl', 'no .deb of openssl 3.5.4-1~deb13u1 in /x']]);
});

const GOLDEN = { markdown: join(import.meta.dirname, 'image-diff.golden.md'), json: join(import.meta.dirname, 'image-diff.golden.json') };

async function golden(t: import('ava').ExecutionContext, file: string, actual: string) {
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) await writeFile(file, actual);
  t.is(actual, await readFile(file, 'utf8'), `${file} (UPDATE_GOLDEN=1 rewrites it; review the diff)`);
}

test('Markdown renderer (golden): headline first, pinned components, security with changelogs, then the rest', async (t) => {
  const md = renderImageDiffMarkdown(DIFF);
  t.regex(md.split('\n')[2]!, /^\*\*🟢 green: 12\/30 checks passed, 18 not applicable \(OS-only\) · packages: 4 upgraded, 2 added, 2 removed; security updates: 2 · compressed image: 392\.9 MiB \(\+11\.4 MiB\); build: 484 s \(\+124 s\); boot → cloud-init: 166 s \(\+6\.0 s, within noise\)\*\*$/);
  t.true(md.indexOf('## Pinned components') < md.indexOf('## Security updates'));
  t.regex(md, /index re-pushed .* linux\/amd64 manifest unchanged .*: no change/);
  await golden(t, GOLDEN.markdown, md);
});

test('JSON renderer (golden): the same model, whole', async (t) => {
  const json = renderImageDiffJson(DIFF);
  t.deepEqual(JSON.parse(json), { format: 1, ...JSON.parse(JSON.stringify(DIFF)) });
  await golden(t, GOLDEN.json, json);
});
