/**
 * `image:lock --kubernetes 1.38`: the target section against a signed fixture repository served on
 * loopback (the shape of pkgs.k8s.io; the FIXTURE packages are not Kubernetes), and Debian forky's
 * real containerd 2 entry from Debian's mirror, checked with gpgv against the Debian archive keyring.
 * The apt preference is checked with apt itself against the real forky and trixie indexes.
 */
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../core/exec.ts';
import { sha256File } from '../../core/hash.ts';
import { fillDefaults } from '../../config/defaults.ts';
import { resolveTargetInputs } from '../../images/artifacts/store.ts';
import { CONTAINERD2_SOURCE, pickDebianPackage, readDebianPackage, renderContainerdPreference } from '../../images/kubernetes/containerd2.ts';
import { kubeadmImagesForVersion } from '../../images/kubernetes/kubeadm.ts';
import { readImageLock, renderImageLock, writeImageLock, type LockedDebianPackage } from '../../images/lock/lock.ts';
import { defaultRefreshParts, emptyLock, refreshLock } from '../../images/lock/refresh.ts';
import { DEBIAN_ARCHIVE_KEYRING } from '../../images/archive/verify.ts';
import { indexAndSign, makeDeb, makeSigningKey, serveDirectory } from '../fixtures/apt-repo.ts';
import { missingCommand, tcpProbe, testUnless, withTempDir, worldFact } from '../helpers.ts';
import test from 'ava';
import { existsSync } from 'node:fs';

const tools = missingCommand('gpg', 'gpgv', 'dpkg-deb', 'apt-ftparchive');
const config = fillDefaults({}, '/nonexistent');
const mirrorReachable = (await tcpProbe('deb.debian.org', 80, 5000).catch(() => 'error')) === 'connected';
const mirror = missingCommand('gpgv', 'apt-get') ?? (existsSync(DEBIAN_ARCHIVE_KEYRING) ? undefined : 'debian-archive-keyring is not installed') ?? (mirrorReachable ? undefined : worldFact("Debian's mirror deb.debian.org is not reachable"));

/** FIXTURE kubeadm: prints the image list kubeadm would for the version it is given (what the lock must pass through). */
const STANDIN_KUBEADM = `#!/bin/sh
# FIXTURE kubeadm for the lock test: answers only "config images list --kubernetes-version V"
[ "$1 $2 $3 $4" = "config images list --kubernetes-version" ] || { echo "unexpected: $*" >&2; exit 2; }
echo "registry.k8s.io/kube-apiserver:$5"
echo "registry.k8s.io/pause:3.10.1"
`;

async function buildTargetRepo(dir: string) {
  const key = await makeSigningKey(dir, 'repo');
  const repo = join(dir, 'repo');
  await makeDeb(repo, 'kubelet', '1.37.2-1.1');
  await makeDeb(repo, 'kubelet', '1.38.0-1.1');
  await makeDeb(repo, 'kubelet', '1.38.1-1.1');
  await makeDeb(repo, 'kubeadm', '1.38.1-1.1', undefined, { files: { 'usr/bin/kubeadm': { content: STANDIN_KUBEADM, mode: 0o755 } } });
  await makeDeb(repo, 'kubectl', '1.38.1-1.1');
  await makeDeb(repo, 'cri-tools', '1.38.0-1.1');
  await makeDeb(repo, 'kubernetes-cni', '1.7.1-1.1');
  await rm(join(repo, '.build'), { recursive: true });
  await indexAndSign(repo, key);
  await cp(key.publicKey, join(repo, 'Release.key'));
  return { key, repo };
}

const CONTAINERD: LockedDebianPackage = {
  name: 'containerd', version: '2.1.9~ds1-1', suite: 'forky', size: 1, sha256: '9'.repeat(64), url: 'http://127.0.0.1:9/pool/main/c/containerd/containerd_2.1.9~ds1-1_amd64.deb',
  release: { uri: 'http://127.0.0.1:9', sha256: '8'.repeat(64), date: 'Mon, 30 Nov 2026 20:00:00 UTC' }, stanza: 'Package: containerd\n',
};

test('a plain image:lock refreshes containerd only when the image or the target needs containerd 2, and the target only when asked', (t) => {
  t.deepEqual(defaultRefreshParts(config), ['debian', 'kubernetes', 'manifests', 'images']);
  t.deepEqual(defaultRefreshParts(fillDefaults({ kubernetes: { containerd: '2' } }, '/s')), ['debian', 'kubernetes', 'manifests', 'images', 'containerd']);
  t.deepEqual(defaultRefreshParts(config, '1.38'), ['debian', 'kubernetes', 'manifests', 'images', 'containerd', 'target']);
});

testUnless(tools, 'image:lock --kubernetes 1.38 locks the target minor from its signed repository; unreachable parts are named and the rest is kept; the lock round-trips', async (t) => {
  await withTempDir(async (dir) => {
    const { key, repo } = await buildTargetRepo(dir);
    const server = await serveDirectory(repo);
    try {
      const previous = emptyLock(config);
      previous.containerd = CONTAINERD;
      const { lock, skipped } = await refreshLock({ config, previous, parts: ['target'], targetMinor: '1.38', targetRepository: server.url, keyFingerprint: key.fingerprint });
      const target = lock.target!;
      t.is(target.kubernetes.minor, '1.38');
      t.is(target.kubernetes.repository, server.url);
      t.is(target.kubernetes.keyring.sha256, await sha256File(join(repo, 'Release.key')));
      t.is(target.kubernetes.packages.kubelet!.version, '1.38.1-1.1', 'the newest of the target minor, not 1.37');
      t.is(target.kubernetes.packages.kubeadm!.sha256, await sha256File(join(repo, 'amd64/kubeadm_1.38.1-1.1_amd64.deb')));
      t.deepEqual(target.containerd, CONTAINERD, "1.38 needs containerd 2: the lock's forky entry is the target's");
      t.deepEqual(Object.keys(target.manifests).sort(), ['calico', 'cert-manager', 'local-path']);
      // GitHub (the add-on manifests) and the registries are not reachable here: named, not faked.
      t.deepEqual(target.images, {});
      t.true(skipped.length >= 1 && skipped.every((s) => s.part === 'target'), JSON.stringify(skipped));
      t.true(skipped.some((s) => /raw\.githubusercontent\.com|github\.com/.test(s.reason)), JSON.stringify(skipped));
      t.true(skipped.some((s) => /add-on manifests .* could not be read, and their images come from them/.test(s.reason)), JSON.stringify(skipped));

      const file = join(dir, 'image.lock.json');
      await writeImageLock(file, lock);
      t.deepEqual(await readImageLock(file), lock);
      t.regex(await readFile(file, 'utf8'), /"target": \{\n {4}"containerd": \{/);
      // A plain refresh afterwards keeps the target section.
      const again = await refreshLock({ config, previous: lock, parts: ['kubernetes'], kubernetesRepository: 'http://127.0.0.1:9/', keyFingerprint: key.fingerprint });
      t.deepEqual(again.lock.target, lock.target);

      // Staging or rehearsing with these inputs: every unreachable one is named at once.
      const withImages = structuredClone(lock);
      withImages.target!.images = { 'registry.k8s.io/kube-apiserver:v1.38.1': { digest: `sha256:${'1'.repeat(64)}`, amd64: `sha256:${'2'.repeat(64)}` } };
      const e = await t.throwsAsync(resolveTargetInputs(withImages, '1.38', { storeDir: join(dir, 'store'), artifactsDir: join(dir, 'empty-artifacts') }));
      t.regex(e!.message, /Kubernetes 1\.38 upgrade payload is incomplete: 7 input\(s\)/);
      t.regex(e!.message, /target package kubeadm 1\.38\.1-1\.1/);
      t.regex(e!.message, /target package containerd 2\.1\.9~ds1-1 \(forky\)/);
      t.regex(e!.message, /image registry\.k8s\.io\/kube-apiserver:v1\.38\.1/);
      const fetched = await resolveTargetInputs({ ...withImages, target: { ...withImages.target!, images: {}, containerd: undefined } }, '1.38', { storeDir: join(dir, 'store') });
      t.is(await sha256File(fetched.debs['target/kubeadm']!), target.kubernetes.packages.kubeadm!.sha256, 'reachable inputs are fetched and verified');
    } finally {
      await server.close();
    }
  });
});

testUnless(tools, "the target's image list is kubeadm's for --kubernetes-version (run from the target .deb)", async (t) => {
  await withTempDir(async (dir) => {
    const deb = await makeDeb(join(dir, 'debs'), 'kubeadm', '1.38.1-1.1', undefined, { files: { 'usr/bin/kubeadm': { content: STANDIN_KUBEADM, mode: 0o755 } } });
    t.deepEqual(await kubeadmImagesForVersion(deb, 'v1.38.1'), ['registry.k8s.io/kube-apiserver:v1.38.1', 'registry.k8s.io/pause:3.10.1']);
  });
});

test('pickDebianPackage takes the newest amd64 build with the prefix, its stanza verbatim', (t) => {
  const index = 'Package: containerd\nVersion: 1.7.24~ds1-6\nArchitecture: amd64\nFilename: pool/main/c/containerd/containerd_1.7.24~ds1-6_amd64.deb\nSize: 10\nSHA256: ' + 'a'.repeat(64) + '\n\n'
    + 'Package: containerd\nVersion: 2.1.9~ds1-1\nArchitecture: arm64\nFilename: pool/main/c/containerd/containerd_2.1.9~ds1-1_arm64.deb\nSize: 11\nSHA256: ' + 'b'.repeat(64) + '\n\n'
    + 'Package: containerd\nVersion: 2.1.9~ds1-1\nArchitecture: amd64\nDepends: runc,\n libc6 (>= 2.34)\nFilename: pool/main/c/containerd/containerd_2.1.9~ds1-1_amd64.deb\nSize: 12\nSHA256: ' + 'c'.repeat(64) + '\n\n'
    + 'Package: containerd-dev\nVersion: 2.1.9~ds1-1\nArchitecture: all\nFilename: x\nSHA256: ' + 'd'.repeat(64) + '\n';
  const p = pickDebianPackage(index, { name: 'containerd', versionPrefix: '2.' }, 'http://deb.debian.org/debian')!;
  t.is(p.version, '2.1.9~ds1-1');
  t.is(p.sha256, 'c'.repeat(64));
  t.is(p.url, 'http://deb.debian.org/debian/pool/main/c/containerd/containerd_2.1.9~ds1-1_amd64.deb');
  t.is(p.stanza, 'Package: containerd\nVersion: 2.1.9~ds1-1\nArchitecture: amd64\nDepends: runc,\n libc6 (>= 2.34)\nFilename: pool/main/c/containerd/containerd_2.1.9~ds1-1_amd64.deb\nSize: 12\nSHA256: ' + 'c'.repeat(64) + '\n');
  t.is(pickDebianPackage(index, { name: 'containerd', versionPrefix: '3.' }, 'http://m'), undefined);
});

testUnless(mirror, "Debian forky's containerd 2 from the real mirror: signed InRelease, index by sha256, the stanza; apt itself takes only containerd from forky under the rendered preference", async (t) => {
  t.timeout(10 * 60_000);
  const pkg = await readDebianPackage({ mirror: 'http://deb.debian.org/debian', suite: CONTAINERD2_SOURCE.suite, component: 'main', name: 'containerd', versionPrefix: '2.' });
  t.log(`forky containerd ${pkg.version} ${pkg.sha256} (${pkg.size} bytes), InRelease ${pkg.release.sha256} of ${pkg.release.date}`);
  t.regex(pkg.version, /^2\.\d+\.\d+/);
  t.regex(pkg.sha256, /^[0-9a-f]{64}$/);
  t.regex(pkg.stanza, /^Package: containerd\n/);
  t.regex(pkg.stanza, /\nDepends: .*runc/);
  t.regex(pkg.url, /^http:\/\/deb\.debian\.org\/debian\/pool\/main\/c\/containerd\/containerd_2\..*_amd64\.deb$/);
  t.regex(renderImageLock({ ...emptyLock(config), containerd: pkg }), /"containerd": \{/);

  await withTempDir(async (dir) => {
    const parts = join(dir, 'sources.list.d');
    const prefs = join(dir, 'preferences.d');
    await mkdir(join(dir, 'lists', 'partial'), { recursive: true });
    await mkdir(join(dir, 'cache', 'archives', 'partial'), { recursive: true });
    await mkdir(parts);
    await mkdir(prefs);
    const source = (suite: string) => `Types: deb\nURIs: http://deb.debian.org/debian\nSuites: ${suite}\nComponents: main\nSigned-By: ${DEBIAN_ARCHIVE_KEYRING}\n`;
    await writeFile(join(parts, 'trixie.sources'), source('trixie'));
    await writeFile(join(parts, 'forky.sources'), source('forky'));
    await writeFile(join(prefs, 'labsmith-containerd.pref'), renderContainerdPreference(pkg));
    const apt = ['-o', 'Dir::Etc::SourceList=/dev/null', '-o', `Dir::Etc::SourceParts=${parts}`, '-o', `Dir::State::Lists=${join(dir, 'lists')}`, '-o', `Dir::Cache=${join(dir, 'cache')}`,
      '-o', 'Dir::Etc::Preferences=/dev/null', '-o', `Dir::Etc::PreferencesParts=${prefs}`, '-o', 'Dir::State::status=/dev/null', '-o', 'APT::Architecture=amd64', '-o', 'Debug::NoLocking=1', '-o', 'APT::Sandbox::User=root'];
    await run('nice', ['-n', '19', 'apt-get', ...apt, 'update'], { timeoutMs: 8 * 60_000 });
    const candidate = async (name: string) => /Candidate: (\S+)/.exec((await run('apt-cache', [...apt, 'policy', name])).stdout)?.[1];
    t.is(await candidate('containerd'), pkg.version, 'containerd: the locked forky version');
    const runc = (await run('apt-cache', [...apt, 'policy', 'runc'])).stdout;
    t.log(runc.split('\n').slice(0, 3).join(' | '));
    t.regex(runc, /forky[^\n]*\n/, 'forky offers a runc too');
    const trixieRunc = /Candidate: (\S+)/.exec(runc)![1]!;
    t.regex((await run('apt-cache', [...apt, 'show', `runc=${trixieRunc}`])).stdout, /Package: runc/);
    t.true((await run('apt-cache', [...apt, 'madison', 'runc'])).stdout.split('\n').some((l) => l.includes(trixieRunc) && /trixie/.test(l)), `runc's candidate ${trixieRunc} is trixie's, not forky's`);
    // The image's package set with containerd 2: only containerd comes from forky, docker.io and runc from trixie.
    const sim = await run('apt-get', [...apt, '-s', 'install', 'containerd', 'docker.io', 'runc'], { timeoutMs: 120_000 });
    // apt names suites by archive: forky is "testing", trixie "13.x/stable".
    const inst = sim.stdout.split('\n').filter((l) => l.startsWith('Inst '));
    t.truthy(inst.find((l) => l.startsWith(`Inst containerd (${pkg.version} Debian:testing `)), inst.join('\n'));
    t.deepEqual(inst.filter((l) => !/Debian:[\d.]+\/stable /.test(l)).map((l) => l.split(' ')[1]), ['containerd'], 'nothing else from forky');
    t.truthy(inst.find((l) => /^Inst docker\.io \(26\.\S+ Debian:[\d.]+\/stable /.test(l)), 'trixie\'s docker.io installs beside containerd 2');
    t.truthy(inst.find((l) => /^Inst runc \(1\.1\.\S+ Debian:[\d.]+\/stable /.test(l)), "trixie's runc satisfies containerd 2's Depends");
  });
});

testUnless(missingCommand('dpkg-deb', 'apt-get', 'shellcheck'), 'the staged payload hook (shellcheck clean) indexes the .debs as a file repository apt reads and installs from, with no network', async (t) => {
  await withTempDir(async (dir) => {
    const lint = await run('shellcheck', ['-s', 'sh', join(process.cwd(), 'images/hooks/index-staged-upgrade.sh')], { allowFailure: true });
    t.is(lint.exitCode, 0, lint.stdout);
    const root = join(dir, 'root');
    const debs = join(root, 'var/lib/labsmith/upgrade/1.38/debs');
    await mkdir(debs, { recursive: true });
    // FIXTURE packages standing in for the staged kubeadm and kubelet (not Kubernetes).
    for (const [name, dep] of [['kubeadm', 'kubelet (>= 1.38.0)'], ['kubelet', undefined]] as const) {
      const built = await makeDeb(join(dir, 'build'), name, '1.38.1-1.1', dep);
      await cp(built, join(debs, `${name}_1.38.1-1.1_amd64.deb`));
    }
    await run('sh', [join(process.cwd(), 'images/hooks/index-staged-upgrade.sh'), root]);
    const index = await readFile(join(debs, 'Packages'), 'utf8');
    t.regex(index, /Package: kubeadm\n(.+\n)*Filename: \.\/kubeadm_1\.38\.1-1\.1_amd64\.deb\n/);
    t.regex(index, new RegExp(`SHA256: ${await sha256File(join(debs, 'kubelet_1.38.1-1.1_amd64.deb'))}`));
    const apt = join(dir, 'apt');
    await mkdir(join(apt, 'sources.list.d'), { recursive: true });
    await mkdir(join(apt, 'lists/partial'), { recursive: true });
    await mkdir(join(apt, 'cache/archives/partial'), { recursive: true });
    // What upgrade-control-plane.sh writes for the staged payload (APT_SOURCE_OPTIONS=trusted=yes).
    await writeFile(join(apt, 'sources.list.d', 'kubernetes.list'), `deb [trusted=yes] file:${debs} /\n`);
    const opts = ['-o', 'Dir::Etc::SourceList=/dev/null', '-o', `Dir::Etc::SourceParts=${join(apt, 'sources.list.d')}`, '-o', `Dir::State::Lists=${join(apt, 'lists')}`, '-o', `Dir::Cache=${join(apt, 'cache')}`, '-o', 'Dir::State::status=/dev/null', '-o', 'APT::Architecture=amd64', '-o', 'Debug::NoLocking=1', '-o', 'APT::Sandbox::User=root'];
    const update = await run('apt-get', [...opts, 'update'], { allowFailure: true });
    t.is(update.exitCode, 0, update.stderr);
    t.regex((await run('apt-cache', [...opts, 'policy', 'kubeadm'])).stdout, /Candidate: 1\.38\.1-1\.1/);
    const sim = await run('apt-get', [...opts, '-s', 'install', 'kubeadm=1.38.1-1.1'], { allowFailure: true });
    t.is(sim.exitCode, 0, sim.stderr + sim.stdout);
    t.regex(sim.stdout, /Inst kubelet \(1\.38\.1-1\.1 /, 'the dependency comes from the same staged index');
    t.regex(sim.stdout, /Inst kubeadm \(1\.38\.1-1\.1 /);
  });
});
