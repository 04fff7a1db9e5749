/**
 * The security section end to end on real files: a signed, Debian-shaped fixture archive on
 * loopback with two versions of one source package; origins read from its pinned index, the
 * new .debs archived (verified), their changelog.Debian.gz read with dpkg-deb, and the diff of
 * two night directories run through the `image:diff` CLI.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ChecksumError } from '../../core/download.ts';
import { run } from '../../core/exec.ts';
import { sha256 } from '../../core/hash.ts';
import type { ImageLock } from '../../images/lock/lock.ts';
import { renderImageLock } from '../../images/lock/lock.ts';
import type { ImageManifest } from '../../images/manifest.ts';
import { diffNights } from '../../nightly/diff/load.ts';
import { archiveDebs, findArchivedDeb } from '../../nightly/input-archive.ts';
import { NIGHT_FILES, NIGHTS_DIR_FILES } from '../../nightly/night-files.ts';
import { packageRecords, readSuiteIndex } from '../../nightly/packages.ts';
import { serveDirectory } from '../fixtures/apt-repo.ts';
import { FIXTURE_BINARIES, FIXTURE_CVES, FIXTURE_DSA, FIXTURE_NEW, FIXTURE_OLD, FIXTURE_SOURCE, makeSecurityArchive } from '../fixtures/security-debs.ts';
import { missingCommand, testUnless, withTempDir } from '../helpers.ts';

const reason = missingCommand('dpkg-deb', 'apt-ftparchive', 'gpg', 'xz');

async function lockFor(archive: Awaited<ReturnType<typeof makeSecurityArchive>>, url: string): Promise<ImageLock> {
  const releases: ImageLock['debian']['releases'] = {};
  for (const suite of [archive.base, archive.security]) releases[suite] = { uri: url.replace(/\/$/, ''), sha256: sha256(await archive.inRelease(suite)), date: 'Sat, 28 Nov 2026 12:00:00 UTC' };
  return { lockVersion: 1, debian: { suite: archive.base, releases }, kubernetes: { minor: '1.37', repository: 'r', keyring: { url: 'k', fingerprint: 'F' }, packages: {} }, manifests: {}, images: {} };
}

const manifest = (packages: ImageManifest['packages'], inputsHash: string): ImageManifest => ({
  inputsHash, suite: 'trixie', sources: [], sourceDateEpoch: 0, layers: {}, files: { 'disk-compressed.qcow2': { bytes: 1000, sha256: '0'.repeat(64) } }, rawBytes: 1, packages, buildSeconds: {},
});

testUnless(reason, 'security section on real .debs: origin from the pinned security index, changelog from the archived .deb, CVE and DSA named', async (t) => {
  await withTempDir(async (dir) => {
    const fixture = await makeSecurityArchive(dir);
    const server = await serveDirectory(fixture.root);
    try {
      const lock = await lockFor(fixture, server.url);
      const indexes = { [fixture.security]: await readSuiteIndex(lock, fixture.security), [fixture.base]: await readSuiteIndex(lock, fixture.base) };
      const order = [fixture.security, fixture.base].map((suite) => ({ suite, index: indexes[suite]! }));
      const oldPackages = packageRecords(fixture.dpkgStatus(FIXTURE_OLD), order);
      const newPackages = packageRecords(fixture.dpkgStatus(FIXTURE_NEW), order);
      t.deepEqual(newPackages.filter((p) => p.source === FIXTURE_SOURCE).map((p) => p.suite), [fixture.security, fixture.security]);
      t.deepEqual(oldPackages.filter((p) => p.source === FIXTURE_SOURCE).map((p) => p.suite), [fixture.base, fixture.base]);

      // Archive the new security .debs (verified against the index), once: the second run adds nothing.
      const nights = join(dir, 'nights');
      const archiveDir = join(nights, NIGHTS_DIR_FILES.archive);
      const securityOnly = newPackages.filter((p) => p.suite === fixture.security);
      const first = await archiveDebs(archiveDir, lock, securityOnly, indexes);
      t.is(first.added.length, FIXTURE_BINARIES.length);
      t.true(first.added.every((f) => f.includes(`/${fixture.security}/pool/updates/main/l/${FIXTURE_SOURCE}/`)), first.added.join(', '));
      t.deepEqual((await archiveDebs(archiveDir, lock, securityOnly, indexes)).added, []);
      t.truthy(await findArchivedDeb(archiveDir, FIXTURE_BINARIES[0], FIXTURE_NEW, 'amd64'));
      t.is(await findArchivedDeb(archiveDir, FIXTURE_BINARIES[0], FIXTURE_OLD, 'amd64'), undefined);

      for (const [name, packages, hash] of [['2026-11-30', oldPackages, '1'], ['2026-12-01', newPackages, '2']] as const) {
        await mkdir(join(nights, name), { recursive: true });
        await writeFile(join(nights, name, NIGHT_FILES.manifest), JSON.stringify(manifest(packages.map(({ name: n, version, architecture }) => ({ name: n, version, architecture })), hash.repeat(64))));
        await writeFile(join(nights, name, NIGHT_FILES.packages), JSON.stringify(packages));
        await writeFile(join(nights, name, NIGHT_FILES.lock), renderImageLock(lock));
      }
      const diff = await diffNights(join(nights, '2026-11-30'), join(nights, '2026-12-01'));
      t.is(diff.security.length, 1);
      const s = diff.security[0]!;
      t.like(s, { source: FIXTURE_SOURCE, old: FIXTURE_OLD, new: FIXTURE_NEW, suite: fixture.security, cves: FIXTURE_CVES, advisories: [FIXTURE_DSA] });
      t.deepEqual(s.entries.map((e) => e.version), [FIXTURE_NEW], 'only the entries after the old version');
      t.deepEqual(s.binaries, [...FIXTURE_BINARIES].sort());

      // The CLI a person runs, both formats, from the same files.
      const md = await run('npx', ['tsx', 'scripts/image-diff.ts', join(nights, '2026-11-30'), join(nights, '2026-12-01')]);
      t.regex(md.stdout, new RegExp(`### ${FIXTURE_SOURCE} ${FIXTURE_OLD.replace(/[.+]/g, '\\$&')} → ${FIXTURE_NEW.replace(/[.+]/g, '\\$&')} \\(trixie-security\\)`));
      t.regex(md.stdout, new RegExp(`CVEs: ${FIXTURE_CVES.join(', ')} · advisories: ${FIXTURE_DSA}`));
      const json = JSON.parse((await run('npx', ['tsx', 'scripts/image-diff.ts', '--format', 'json', join(nights, '2026-11-30'), join(nights, '2026-12-01')])).stdout);
      t.deepEqual(json.security[0].cves, FIXTURE_CVES);
      const bad = await run('npx', ['tsx', 'scripts/image-diff.ts', join(nights, '2026-11-30')], { allowFailure: true });
      t.is(bad.exitCode, 2, bad.stderr);
    } finally {
      await server.close();
    }
  });
});

testUnless(reason, 'a moved index or a tampered .deb is refused, naming the file', async (t) => {
  await withTempDir(async (dir) => {
    const fixture = await makeSecurityArchive(dir);
    const server = await serveDirectory(fixture.root);
    try {
      const lock = await lockFor(fixture, server.url);
      const moved = structuredClone(lock);
      moved.debian.releases[fixture.security]!.sha256 = 'f'.repeat(64);
      const error = await t.throwsAsync(readSuiteIndex(moved, fixture.security));
      t.regex(error!.message, /InRelease is no longer the one the lock pins/);

      const indexes = { [fixture.security]: await readSuiteIndex(lock, fixture.security) };
      const packages = packageRecords(fixture.dpkgStatus(FIXTURE_NEW), [{ suite: fixture.security, index: indexes[fixture.security]! }]);
      const entry = indexes[fixture.security]!.get(FIXTURE_BINARIES[0])![0]!;
      await writeFile(join(fixture.root, entry.filename), 'tampered');
      const tampered = await t.throwsAsync(archiveDebs(join(dir, 'archive'), lock, packages, indexes));
      t.true(tampered instanceof ChecksumError, tampered?.message);
      t.regex(tampered!.message, new RegExp(FIXTURE_BINARIES[0]));
      t.is(await findArchivedDeb(join(dir, 'archive'), FIXTURE_BINARIES[0], FIXTURE_NEW, 'amd64'), undefined, 'nothing half-downloaded is kept');
    } finally {
      await server.close();
    }
  });
});
