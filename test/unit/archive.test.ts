import test from 'ava';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LabError } from '../../core/errors.ts';
import { archiveBuild } from '../../images/archive/collect.ts';
import { lockId, mirrorDir, parseReleaseSha256, planPoolFiles, validUntil } from '../../images/archive/layout.ts';
import { renderMirrorMovedError } from '../../images/archive/messages.ts';
import { pruneArchive } from '../../images/archive/archive-image.ts';
import { openArchiveRoute, openSnapshotRoute, renderFetchAptConf, renderFetchRouteArgs } from '../../images/archive/route.ts';
import { scanBlobs } from '../../images/archive/store.ts';
import type { AptSource } from '../../images/recipe.ts';
import { makeSigningKey, serveDirectory, type TestKey } from '../fixtures/apt-repo.ts';
import { aptInPrivateRoot, exportKeyring, fixtureLock, writeFixtureSuite } from '../fixtures/archive-repo.ts';
import { missingCommand, testUnless, withTempDir } from '../helpers.ts';

const DAY = 86_400_000;
const tools = missingCommand('gpg', 'gpgv', 'apt-ftparchive', 'apt-get', 'dpkg-deb', 'xz');

test('the Release SHA256 section, Valid-Until and the pool plan are read as apt reads them', (t) => {
  const release = 'Date: Mon, 30 Nov 2026 00:22:33 UTC\nValid-Until: Mon, 07 Dec 2026 00:22:33 UTC\nMD5Sum:\n 0123 10 main/x\nSHA256:\n ' + 'a'.repeat(64) + '   311108 main/binary-amd64/Packages.xz\n ' + 'b'.repeat(64) + ' 140 main/binary-amd64/Release\n';
  const listed = parseReleaseSha256(release);
  t.deepEqual(listed.get('main/binary-amd64/Packages.xz'), { sha256: 'a'.repeat(64), bytes: 311108 });
  t.false(listed.has('main/x'));
  t.is(validUntil(release)?.toISOString(), '2026-12-07T00:22:33.000Z');
  const main: AptSource = { uri: 'http://deb.debian.org/debian', suite: 'trixie', components: ['main'] };
  const updates: AptSource = { ...main, suite: 'trixie-updates' };
  const stanza = { name: 'bash', version: '5.2', architecture: 'amd64', filename: 'pool/main/b/bash/bash_5.2_amd64.deb', sha256: 'c'.repeat(64), bytes: 1 };
  const plan = planPoolFiles([{ name: 'bash', version: '5.2', architecture: 'amd64' }, { name: 'gone', version: '1', architecture: 'all' }], [{ source: main, packages: [stanza] }, { source: updates, packages: [stanza] }]);
  t.is(plan.found.length, 1, 'one pool file even when two suites of one mirror list it');
  t.deepEqual(plan.missing, ['gone 1 (all)']);
  t.is(mirrorDir('http://deb.debian.org/debian-security/'), 'mirror/deb.debian.org/debian-security');
});

test('the fetch route turns Valid-Until off only when asked, and removes its apt.conf before the layer hooks', (t) => {
  t.false(renderFetchAptConf('http://127.0.0.1:1/', false).includes('Check-Valid-Until'));
  t.true(renderFetchAptConf('http://127.0.0.1:1/', true).includes('Acquire::Check-Valid-Until "false";'));
  const args = renderFetchRouteArgs('/tmp/x/00labsmith-fetch');
  t.is(args[0], '--setup-hook=copy-in /tmp/x/00labsmith-fetch /etc/apt/apt.conf.d');
  t.regex(args[1]!, /^--customize-hook=rm -f "\$1\/etc\/apt\/apt.conf.d\/00labsmith-fetch"$/);
});

test('a moved mirror: the error says when the lock was taken, what moved and the three ways on', (t) => {
  const lock = fixtureLock('http://deb.debian.org/debian', [{ root: '', suite: 'trixie', inRelease: Buffer.from('x'), date: 'Sat, 21 Nov 2026 09:15:44 UTC' }]);
  const error = renderMirrorMovedError(lock, [{ uri: 'http://deb.debian.org/debian', suite: 'trixie', components: ['main'] }], { releaseHashes: { trixie: 'f'.repeat(64) }, dates: { trixie: 'Tue, 01 Dec 2026 08:00:00 UTC' }, newestDate: 0 });
  t.regex(error.message, /taken \(Sat, 21 Nov 2026 09:15:44 UTC\)/);
  t.regex(error.message, /trixie: locked Sat, 21 Nov 2026 .* the mirror now has Tue, 01 Dec 2026/);
  t.regex(error.hint!, /image:lock/);
  t.regex(error.hint!, /--artifacts DIR/);
  t.regex(error.hint!, /debian\.snapshot/);
});

test('lock id ignores key order', (t) => {
  const a = fixtureLock('http://m/debian', [{ root: '', suite: 's', inRelease: Buffer.from('1'), date: 'd' }]);
  const b = JSON.parse(JSON.stringify({ images: a.images, manifests: a.manifests, kubernetes: a.kubernetes, debian: a.debian, lockVersion: 1 }));
  t.is(lockId(a), lockId(b));
});

interface Fixture {
  dir: string;
  key: TestKey;
  keyring: string;
  otherKeyring: string;
  mirror: Awaited<ReturnType<typeof serveDirectory>>;
  uri: string;
  source: AptSource;
}

async function withFixture(t: { teardown: (fn: () => Promise<void>) => void }, dir: string, validUntil?: Date): Promise<Fixture> {
  const key = await makeSigningKey(dir, 'fixture-archive');
  const other = await makeSigningKey(dir, 'fixture-other');
  const keyring = await exportKeyring(key, join(dir, 'fixture.gpg'));
  const otherKeyring = await exportKeyring(other, join(dir, 'other.gpg'));
  const served = join(dir, 'served');
  await mkdir(join(served, 'debian'), { recursive: true });
  await writeFixtureSuite(join(served, 'debian'), 'fixture', key, [{ name: 'hello', version: '1.0' }, { name: 'unused', version: '1.0' }], { date: new Date(Date.now() - 2 * DAY), validUntil });
  const mirror = await serveDirectory(served);
  t.teardown(() => mirror.close());
  const uri = `${mirror.url}debian`;
  return { dir, key, keyring, otherKeyring, mirror, uri, source: { uri, suite: 'fixture', components: ['main'] } };
}

async function archiveFixture(f: Fixture, out: string) {
  const inRelease = await readFile(join(f.dir, 'served/debian/dists/fixture/InRelease'));
  const lock = fixtureLock(f.uri, [{ root: '', suite: 'fixture', inRelease, date: new Date(Date.now() - 2 * DAY).toUTCString() }]);
  const result = await archiveBuild({ out, lock, sources: [f.source], installed: [{ name: 'hello', version: '1.0', architecture: 'amd64' }], keyring: f.keyring });
  return { lock, result };
}

testUnless(tools, 'an archived suite is a partial mirror apt reads and verifies through the route, with the mirror gone; the same lock again adds nothing', async (t) => {
  await withTempDir(async (dir) => {
    const f = await withFixture(t, dir);
    const out = join(dir, 'archive');
    const { lock, result } = await archiveFixture(f, out);
    t.is(result.locks, 1);
    t.true(result.addedBytes > 0);
    t.true(existsSync(join(result.view, mirrorDir(f.uri), 'pool/main/h/hello/hello_1.0_amd64.deb')));
    t.false(existsSync(join(result.view, mirrorDir(f.uri), 'pool/main/u/unused/unused_1.0_amd64.deb')), 'only installed packages are archived');
    const again = await archiveFixture(f, out);
    t.is(again.result.addedBytes, 0, 'a second archived build of the same lock adds nothing');
    t.is(again.result.totalBytes, result.totalBytes);

    await f.mirror.close();
    const route = await openArchiveRoute({ dir: out, lock, sources: [f.source], keyring: f.keyring });
    t.deepEqual(route.expired, []);
    const running = await route.start();
    try {
      const sources = `deb [signed-by=${f.keyring}] ${f.uri} fixture main`;
      const update = await aptInPrivateRoot(dir, sources, running.aptConf, ['update']);
      t.is(update.exitCode, 0, update.stderr + update.stdout);
      const download = await aptInPrivateRoot(dir, sources, running.aptConf, ['download', 'hello']);
      t.is(download.exitCode, 0, download.stderr + download.stdout);
      t.true(running.requests.some((r) => r.endsWith('/dists/fixture/InRelease')), 'apt asked the route for the InRelease');
      t.true(running.requests.some((r) => r.endsWith('hello_1.0_amd64.deb')));
      t.deepEqual(running.problems, []);
      // apt's own signature check against a key it does not trust fails: it verifies, not us only.
      const untrusted = await aptInPrivateRoot(join(dir, 'untrusted'), `deb [signed-by=${f.otherKeyring}] ${f.uri} fixture main`, running.aptConf, ['update']);
      t.regex(untrusted.stdout + untrusted.stderr, /NO_PUBKEY|not signed|signature/i);
    } finally {
      await running.close();
    }
  });
});

testUnless(tools, 'an expired InRelease is accepted through the archive route only (Valid-Until off there), never against the mirror', async (t) => {
  await withTempDir(async (dir) => {
    const f = await withFixture(t, dir, new Date(Date.now() - DAY));
    const out = join(dir, 'archive');
    const { lock } = await archiveFixture(f, out);
    const sources = `deb [signed-by=${f.keyring}] ${f.uri} fixture main`;
    const live = await aptInPrivateRoot(join(dir, 'live'), sources, '', ['update']);
    t.regex(live.stdout + live.stderr, /no longer valid|expired/i, 'the live mirror with an expired InRelease is refused by apt');
    const route = await openArchiveRoute({ dir: out, lock, sources: [f.source], keyring: f.keyring });
    t.is(route.expired.length, 1);
    t.is(route.expired[0]!.suite, 'fixture');
    const running = await route.start();
    try {
      t.true(running.aptConf.includes('Check-Valid-Until "false"'));
      const update = await aptInPrivateRoot(join(dir, 'routed'), sources, running.aptConf, ['update']);
      t.is(update.exitCode, 0, update.stderr + update.stdout);
    } finally {
      await running.close();
    }
  });
});

testUnless(tools, 'bad archives are refused naming the file and the lock entry: tampered .deb, missing file, another key, another lock', async (t) => {
  await withTempDir(async (dir) => {
    const f = await withFixture(t, dir);
    const out = join(dir, 'archive');
    const { lock, result } = await archiveFixture(f, out);
    const deb = join(result.view, mirrorDir(f.uri), 'pool/main/h/hello/hello_1.0_amd64.deb');
    const open = (o: Partial<Parameters<typeof openArchiveRoute>[0]> = {}) => openArchiveRoute({ dir: out, lock, sources: [f.source], keyring: f.keyring, ...o });

    const otherKey = await t.throwsAsync(open({ keyring: f.otherKeyring }), { instanceOf: LabError });
    t.regex(otherKey!.message, /dists\/fixture\/InRelease \(lock entry debian\.releases\.fixture\): its signature does not verify/);

    const otherLock = await t.throwsAsync(open({ lock: { ...lock, debian: { ...lock.debian, releases: { fixture: { ...lock.debian.releases.fixture!, sha256: 'e'.repeat(64) } } } } }));
    t.regex(otherLock!.message, new RegExp(`has no inputs for this lock .* it holds ${result.lockId}`));

    const original = await readFile(deb);
    await appendFile(deb, 'tampered');
    const tampered = await t.throwsAsync(open());
    t.regex(tampered!.message, /hello_1\.0_amd64\.deb \(lock entry debian\.releases\.fixture: package hello 1\.0\): sha256 .* does not match/);
    await writeFile(deb, original);

    await rm(deb);
    const missing = await t.throwsAsync(open());
    t.regex(missing!.message, /hello_1\.0_amd64\.deb \(lock entry debian\.releases\.fixture: package hello 1\.0\): is missing from the archive/);
  });
});

testUnless(tools, 'prune --keep 1 keeps the newest lock and removes every blob only the older one used', async (t) => {
  await withTempDir(async (dir) => {
    const f = await withFixture(t, dir);
    const out = join(dir, 'archive');
    const first = await archiveFixture(f, out);
    // The mirror moves a day on: a new hello, a new InRelease.
    await writeFixtureSuite(join(dir, 'served/debian'), 'fixture', f.key, [{ name: 'hello', version: '2.0' }], { date: new Date(Date.now() - DAY) });
    const inRelease = await readFile(join(dir, 'served/debian/dists/fixture/InRelease'));
    const lock2 = fixtureLock(f.uri, [{ root: '', suite: 'fixture', inRelease, date: new Date(Date.now() - DAY).toUTCString() }]);
    const second = await archiveBuild({ out, lock: lock2, sources: [f.source], installed: [{ name: 'hello', version: '2.0', architecture: 'amd64' }], keyring: f.keyring });
    t.is(second.locks, 2);
    t.true(second.addedBytes > 0 && second.addedBytes < second.totalBytes);
    const pruned = await pruneArchive(out, 1);
    t.deepEqual(pruned.kept, [second.lockId]);
    t.deepEqual(pruned.removed, [first.result.lockId]);
    t.true(pruned.freedBytes > 0);
    t.deepEqual((await scanBlobs(out)).unreferenced, []);
    await t.notThrowsAsync(openArchiveRoute({ dir: out, lock: lock2, sources: [f.source], keyring: f.keyring }));
  });
});

testUnless(tools, 'debian.snapshot: the suites come from a snapshot-shaped loopback server (made from the archive), checked against the lock', async (t) => {
  await withTempDir(async (dir) => {
    const f = await withFixture(t, dir);
    const out = join(dir, 'archive');
    const { lock, result } = await archiveFixture(f, out);
    await f.mirror.close();
    // snapshot.debian.org's scheme: /archive/debian/<timestamp>/dists/...
    const ts = '20261130T000000Z';
    await mkdir(join(dir, 'snapshot/archive/debian'), { recursive: true });
    await symlink(join(result.view, mirrorDir(f.uri)), join(dir, 'snapshot/archive/debian', ts));
    const snapshot = await serveDirectory(join(dir, 'snapshot'));
    t.teardown(() => snapshot.close());
    const route = await openSnapshotRoute({ timestamp: ts, lock, sources: [f.source], service: snapshot.url, keyring: f.keyring });
    const running = await route.start();
    try {
      const sources = `deb [signed-by=${f.keyring}] ${f.uri} fixture main`;
      const download = await aptInPrivateRoot(dir, sources, running.aptConf, ['update']);
      t.is(download.exitCode, 0, download.stderr + download.stdout);
      t.true((await aptInPrivateRoot(dir, sources, running.aptConf, ['download', 'hello'])).exitCode === 0);
      t.true(snapshot.requests.includes(`/archive/debian/${ts}/pool/main/h/hello/hello_1.0_amd64.deb`));
    } finally {
      await running.close();
    }
    const wrong = await t.throwsAsync(openSnapshotRoute({ timestamp: '20200101T000000Z', lock, sources: [f.source], service: snapshot.url, keyring: f.keyring }));
    t.regex(wrong!.message, /cannot read .*archive\/debian\/20200101T000000Z\/dists\/fixture\/InRelease/);
  });
});
