/**
 * The security section end to end on real files: a signed, Debian-shaped fixture archive on
 * loopback with two versions of one source package; the new build's inputs archived by the input
 * archive (signature, index and .deb hashes verified), origins read back from the archived
 * indexes, the new .deb's changelog.Debian.gz read with dpkg-deb, and the diff of two night
 * directories run through the `image:diff` CLI.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ChecksumError } from '../../core/download.ts';
import { run } from '../../core/exec.ts';
import { sha256 } from '../../core/hash.ts';
import { archiveBuild } from '../../images/archive/collect.ts';
import type { ImageLock } from '../../images/lock/lock.ts';
import { renderImageLock } from '../../images/lock/lock.ts';
import type { ImageManifest } from '../../images/manifest.ts';
import type { AptSource } from '../../images/recipe.ts';
import { diffNights } from '../../nightly/diff/load.ts';
import { findArchivedDeb, readArchivedIndexes } from '../../nightly/input-archive.ts';
import { NIGHT_FILES, NIGHTS_DIR_FILES } from '../../nightly/night-files.ts';
import { packageRecords, securityFirst } from '../../nightly/packages.ts';
import { serveDirectory } from '../fixtures/apt-repo.ts';
import { FIXTURE_BINARIES, FIXTURE_CVES, FIXTURE_DSA, FIXTURE_NEW, FIXTURE_OLD, FIXTURE_SOURCE, makeSecurityArchive, type SecurityArchive } from '../fixtures/security-debs.ts';
import { missingCommand, testUnless, withTempDir } from '../helpers.ts';

const reason = missingCommand('dpkg-deb', 'apt-ftparchive', 'gpg', 'gpgv', 'xz');

async function lockFor(fixture: SecurityArchive, sources: AptSource[]): Promise<ImageLock> {
  const releases: ImageLock['debian']['releases'] = {};
  for (const s of sources) releases[s.suite] = { uri: s.uri, sha256: sha256(await fixture.inRelease(s.suite)), date: 'Sat, 28 Nov 2026 12:00:00 UTC' };
  return { lockVersion: 1, debian: { suite: fixture.base, releases }, kubernetes: { minor: '1.37', repository: 'r', keyring: { url: 'k', fingerprint: 'F' }, packages: {} }, manifests: {}, images: {} };
}

/** The fixture key as a binary keyring for gpgv (Debian's archive keyring in real nights). */
async function keyring(fixture: SecurityArchive, dir: string): Promise<string> {
  const file = join(dir, 'fixture-keyring.gpg');
  await run('gpg', ['--homedir', fixture.key.home, '--batch', '--yes', '--output', file, '--export', fixture.key.fingerprint]);
  return file;
}

const installed = (version: string) => [{ name: 'base-files', version: '13.8', architecture: 'amd64' }, ...FIXTURE_BINARIES.map((name) => ({ name, version, architecture: 'amd64' }))];

const manifest = (packages: ImageManifest['packages'], inputsHash: string): ImageManifest => ({
  inputsHash, suite: 'trixie', sources: [], sourceDateEpoch: 0, layers: {}, files: { 'disk-compressed.qcow2': { bytes: 1000, sha256: '0'.repeat(64) } }, rawBytes: 1, packages, buildSeconds: {},
});

async function withFixture(body: (f: { dir: string; fixture: SecurityArchive; sources: AptSource[]; lock: ImageLock; keyring: string }) => Promise<void>) {
  await withTempDir(async (dir) => {
    const fixture = await makeSecurityArchive(dir);
    const server = await serveDirectory(fixture.root);
    try {
      const uri = server.url.replace(/\/$/, '');
      const sources: AptSource[] = [fixture.base, fixture.security].map((suite) => ({ uri, suite, components: ['main'] }));
      await body({ dir, fixture, sources, lock: await lockFor(fixture, sources), keyring: await keyring(fixture, dir) });
    } finally {
      await server.close();
    }
  });
}

testUnless(reason, 'security section on real .debs: archived by the input archive, origin from its security index, changelog from its .deb, CVE and DSA named', async (t) => {
  await withFixture(async ({ dir, fixture, sources, lock, keyring }) => {
    const nights = join(dir, 'nights');
    const archiveDir = join(nights, NIGHTS_DIR_FILES.archive);
    const archived = await archiveBuild({ out: archiveDir, lock, sources, installed: installed(FIXTURE_NEW).filter((p) => p.name !== 'base-files'), keyring });
    const indexes = securityFirst(await readArchivedIndexes(archived.view, [...sources].reverse()));
    t.deepEqual(indexes.map((i) => i.suite), [fixture.security, fixture.base]);
    const oldPackages = packageRecords(fixture.dpkgStatus(FIXTURE_OLD), indexes);
    const newPackages = packageRecords(fixture.dpkgStatus(FIXTURE_NEW), indexes);
    t.deepEqual(newPackages.filter((p) => p.source === FIXTURE_SOURCE).map((p) => p.suite), [fixture.security, fixture.security]);
    t.deepEqual(oldPackages.filter((p) => p.source === FIXTURE_SOURCE).map((p) => p.suite), [fixture.base, fixture.base]);
    t.truthy(await findArchivedDeb(archiveDir, FIXTURE_BINARIES[0], FIXTURE_NEW, 'amd64'));
    t.is(await findArchivedDeb(archiveDir, FIXTURE_BINARIES[0], FIXTURE_OLD, 'amd64'), undefined, 'only the new night was archived');

    for (const [name, packages, hash] of [['2026-11-30', oldPackages, '1'], ['2026-12-01', newPackages, '2']] as const) {
      await mkdir(join(nights, name), { recursive: true });
      await writeFile(join(nights, name, NIGHT_FILES.manifest), JSON.stringify(manifest(packages.map(({ name: n, version, architecture }) => ({ name: n, version, architecture })), hash.repeat(64))));
      await writeFile(join(nights, name, NIGHT_FILES.packages), JSON.stringify(packages));
      await writeFile(join(nights, name, NIGHT_FILES.lock), renderImageLock(lock));
    }
    // The archive beside the nights is found without --archive.
    const diff = await diffNights(join(nights, '2026-11-30'), join(nights, '2026-12-01'));
    t.is(diff.security.length, 1);
    const s = diff.security[0]!;
    t.like(s, { source: FIXTURE_SOURCE, old: FIXTURE_OLD, new: FIXTURE_NEW, suite: fixture.security, cves: FIXTURE_CVES, advisories: [FIXTURE_DSA] });
    t.is(s.changelogMissing, undefined);
    t.deepEqual(s.entries.map((e) => e.version), [FIXTURE_NEW], 'only the entries after the old version');
    t.deepEqual(s.binaries, [...FIXTURE_BINARIES].sort());

    // The CLI a person runs, both formats, from the same files.
    const md = await run('npx', ['tsx', 'scripts/image-diff.ts', join(nights, '2026-11-30'), join(nights, '2026-12-01')]);
    t.regex(md.stdout, new RegExp(`### ${FIXTURE_SOURCE} ${FIXTURE_OLD.replace(/[.+]/g, '\\$&')} → ${FIXTURE_NEW.replace(/[.+]/g, '\\$&')} \\(trixie-security\\)`));
    t.regex(md.stdout, new RegExp(`CVEs: ${FIXTURE_CVES.join(', ')} · advisories: ${FIXTURE_DSA}`));
    const json = JSON.parse((await run('npx', ['tsx', 'scripts/image-diff.ts', '--format', 'json', join(nights, '2026-11-30'), join(nights, '2026-12-01')])).stdout);
    t.deepEqual(json.security[0].cves, FIXTURE_CVES);
    const noArchive = JSON.parse((await run('npx', ['tsx', 'scripts/image-diff.ts', '--format', 'json', '--archive', join(dir, 'empty'), join(nights, '2026-11-30'), join(nights, '2026-12-01')])).stdout);
    t.regex(noArchive.security[0].changelogMissing, /no \.deb of labsmith-fixture 1\.0-1\+deb13u1 in /, 'without the .deb the report says so');
    const bad = await run('npx', ['tsx', 'scripts/image-diff.ts', join(nights, '2026-11-30')], { allowFailure: true });
    t.is(bad.exitCode, 2, bad.stderr);
  });
});

testUnless(reason, 'a tampered security .deb is refused by the archive step, naming it', async (t) => {
  await withFixture(async ({ dir, fixture, sources, lock, keyring }) => {
    const deb = join(fixture.root, `pool/updates/main/l/${FIXTURE_SOURCE}/${FIXTURE_BINARIES[0]}_${FIXTURE_NEW}_amd64.deb`);
    await writeFile(deb, 'tampered');
    const error = await t.throwsAsync(archiveBuild({ out: join(dir, 'archive'), lock, sources, installed: installed(FIXTURE_NEW).filter((p) => p.name !== 'base-files'), keyring }));
    t.true(error instanceof ChecksumError, error?.message);
    t.regex(error!.message, new RegExp(FIXTURE_BINARIES[0]));
    t.is(await findArchivedDeb(join(dir, 'archive'), FIXTURE_BINARIES[0], FIXTURE_NEW, 'amd64'), undefined, 'nothing half-downloaded is kept');
  });
});
