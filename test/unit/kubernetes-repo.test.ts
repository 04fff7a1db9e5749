/**
 * The Kubernetes apt repository, the lock and the locked-input store, against a signed apt
 * repository the test builds and serves on loopback (the shape of pkgs.k8s.io).
 */
import test from 'ava';
import { mkdir, readFile, rm, writeFile, appendFile, cp } from 'node:fs/promises';
import { join } from 'node:path';
import { ChecksumError, UnreachableError } from '../../core/download.ts';
import { run } from '../../core/exec.ts';
import { sha256File } from '../../core/hash.ts';
import { fillDefaults } from '../../config/defaults.ts';
import { resolveLockedInputs } from '../../images/artifacts/store.ts';
import { KUBERNETES_PACKAGES } from '../../images/kubernetes/repository.ts';
import { renderKubernetesAptSource } from '../../images/kubernetes/rootfs-files.ts';
import { diffImageLocks, readImageLock, writeImageLock, type ImageLock } from '../../images/lock/lock.ts';
import { emptyLock, imagesVersionMismatch, refreshLock } from '../../images/lock/refresh.ts';
import { LabError } from '../../core/errors.ts';
import { indexAndSign, makeDeb, makeSigningKey, serveDirectory, type TestKey } from '../fixtures/apt-repo.ts';
import { missingCommand, testUnless, withTempDir } from '../helpers.ts';

const reason = missingCommand('gpg', 'gpgv', 'dpkg-deb', 'apt-ftparchive');
const config = fillDefaults({}, '/nonexistent');

/** kubelet 1.37.1 and 1.37.2 and 1.38.0 (wrong minor), plus the other four packages; arm64 builds listed first, one newer than amd64's. */
async function buildRepo(dir: string, key: TestKey): Promise<string> {
  const repo = join(dir, 'repo');
  await makeDeb(repo, 'kubelet', '1.37.2-1.1', undefined, { architecture: 'arm64' });
  await makeDeb(repo, 'kubelet', '1.37.3-1.1', undefined, { architecture: 'arm64' });
  await makeDeb(repo, 'kubeadm', '1.37.2-1.1', undefined, { architecture: 'arm64' });
  await makeDeb(repo, 'kubelet', '1.37.1-1.1');
  await makeDeb(repo, 'kubelet', '1.37.2-1.1');
  await makeDeb(repo, 'kubelet', '1.38.0-1.1');
  await makeDeb(repo, 'kubeadm', '1.37.2-1.1', 'kubelet (>= 1.19.0), kubectl (>= 1.13.0), cri-tools (>= 1.30.0)');
  await makeDeb(repo, 'kubectl', '1.37.2-1.1');
  await makeDeb(repo, 'cri-tools', '1.37.0-1.1');
  await makeDeb(repo, 'kubernetes-cni', '1.7.1-1.1');
  await rm(join(repo, '.build'), { recursive: true });
  await indexAndSign(repo, key);
  await cp(key.publicKey, join(repo, 'Release.key'));
  return repo;
}

async function withRepo(body: (ctx: { dir: string; repo: string; key: TestKey; url: string }) => Promise<void>): Promise<void> {
  await withTempDir(async (dir) => {
    const key = await makeSigningKey(dir, 'repo');
    const repo = await buildRepo(dir, key);
    const server = await serveDirectory(repo);
    try {
      await body({ dir, repo, key, url: server.url });
    } finally {
      await server.close();
    }
  });
}

testUnless(reason, 'image:lock reads the signed repository: the newest package of the minor, with URL, sha256 and the key checksum', async (t) => {
  await withRepo(async ({ repo, key, url }) => {
    const { lock, skipped } = await refreshLock({ config, kubernetesRepository: url, keyFingerprint: key.fingerprint, parts: ['kubernetes'] });
    t.deepEqual(skipped, []);
    const k = lock.kubernetes;
    t.is(k.keyring.sha256, await sha256File(join(repo, 'Release.key')));
    t.is(k.packages.kubelet?.version, '1.37.2-1.1', '1.38.0 is another minor; 1.37.2 is newer than 1.37.1');
    t.is(k.packages.kubelet?.url, `${url}amd64/kubelet_1.37.2-1.1_amd64.deb`, 'the amd64 build, though arm64 is listed first and has a newer one');
    t.is(k.packages.kubeadm?.url, `${url}amd64/kubeadm_1.37.2-1.1_amd64.deb`);
    const index = await readFile(join(repo, 'Packages'), 'utf8');
    t.true(index.indexOf('Architecture: arm64') < index.indexOf('Architecture: amd64'), 'the fixture lists arm64 first');
    t.is(k.packages.kubelet?.sha256, await sha256File(join(repo, 'amd64/kubelet_1.37.2-1.1_amd64.deb')));
    t.deepEqual(Object.keys(k.packages).sort(), [...KUBERNETES_PACKAGES].sort());
    t.is(k.packages['cri-tools']?.version, '1.37.0-1.1');
  });
});

testUnless(reason, 'a repository key that is not the pinned fingerprint is refused', async (t) => {
  await withRepo(async ({ url }) => {
    const error = await t.throwsAsync(refreshLock({ config, kubernetesRepository: url, keyFingerprint: 'A'.repeat(40), parts: ['kubernetes'] }));
    t.regex(error!.message, /not the pinned A{40}/);
  });
});

testUnless(reason, 'an InRelease signed by another key, or a Packages index that does not match it, is refused', async (t) => {
  await withRepo(async ({ dir, repo, key, url }) => {
    const intruder = await makeSigningKey(dir, 'intruder');
    await indexAndSign(repo, intruder);
    const wrongSigner = await t.throwsAsync(refreshLock({ config, kubernetesRepository: url, keyFingerprint: key.fingerprint, parts: ['kubernetes'] }));
    t.regex(wrongSigner!.message, new RegExp(`is not signed by the pinned key ${key.fingerprint}`));

    await indexAndSign(repo, key);
    await appendFile(join(repo, 'Packages'), '\nPackage: kubelet\nVersion: 1.37.9-1.1\nFilename: amd64/evil.deb\nSHA256: ' + 'e'.repeat(64) + '\n');
    const tampered = await t.throwsAsync(refreshLock({ config, kubernetesRepository: url, keyFingerprint: key.fingerprint, parts: ['kubernetes'] }));
    t.regex(tampered!.message, /Packages does not match the sha256 its InRelease lists/);
  });
});

testUnless(reason, 'the rendered apt source with the pinned keyring works with apt itself against the repository', async (t) => {
  await withRepo(async ({ dir, key, url }) => {
    const { lock } = await refreshLock({ config, kubernetesRepository: url, keyFingerprint: key.fingerprint, parts: ['kubernetes'] });
    const apt = join(dir, 'apt');
    await mkdir(join(apt, 'sources.list.d'), { recursive: true });
    await mkdir(join(apt, 'lists/partial'), { recursive: true });
    await mkdir(join(apt, 'cache/archives/partial'), { recursive: true });
    const keyring = join(apt, 'kubernetes-apt-keyring.gpg');
    const { pinnedKeyring } = await import('../../images/kubernetes/repository.ts');
    await pinnedKeyring(key.publicKey, key.fingerprint, keyring);
    await writeFile(join(apt, 'sources.list.d', 'kubernetes.sources'), renderKubernetesAptSource(url, keyring));
    const opts = ['-o', 'Dir::Etc::SourceList=/dev/null', '-o', `Dir::Etc::SourceParts=${join(apt, 'sources.list.d')}`, '-o', `Dir::State::Lists=${join(apt, 'lists')}`, '-o', `Dir::Cache=${join(apt, 'cache')}`, '-o', 'Dir::Etc::Preferences=/dev/null', '-o', `Dir::Etc::PreferencesParts=${join(apt, 'none')}`, '-o', 'APT::Architecture=amd64', '-o', 'Debug::NoLocking=1'];
    const update = await run('apt-get', [...opts, 'update'], { allowFailure: true });
    t.is(update.exitCode, 0, update.stderr);
    t.notRegex(update.stderr + update.stdout, /NO_PUBKEY|not signed|W: GPG/);
    const policy = await run('apt-cache', [...opts, 'policy', 'kubelet']);
    t.regex(policy.stdout, new RegExp(`^\\s+${lock.kubernetes.packages.kubelet!.version.replace(/\./g, '\\.')} 500$`, 'm'), 'apt offers the version the lock chose from the same repository');
  });
});

testUnless(reason, 'locked files are downloaded and verified; a changed file or an unreachable URL stops with its name', async (t) => {
  await withRepo(async ({ dir, repo, key, url }) => {
    const { lock } = await refreshLock({ config, kubernetesRepository: url, keyFingerprint: key.fingerprint, parts: ['kubernetes'] });
    const want = { packages: KUBERNETES_PACKAGES, manifests: [], images: false };
    const store = join(dir, 'store');
    const resolved = await resolveLockedInputs(lock, want, { storeDir: store });
    t.is(await sha256File(resolved.debs.kubeadm!), lock.kubernetes.packages.kubeadm!.sha256);

    // The server's kubectl changes after the lock: a new download must refuse it.
    await rm(join(store, 'files'), { recursive: true });
    await appendFile(join(repo, 'amd64/kubectl_1.37.2-1.1_amd64.deb'), 'x');
    const changed = await t.throwsAsync(resolveLockedInputs(lock, want, { storeDir: store }));
    t.true(changed instanceof ChecksumError);
    t.regex(changed!.message, /kubectl_1\.37\.2-1\.1_amd64\.deb: sha256 \w+ does not match the locked/);

    const dead: ImageLock = structuredClone(lock);
    dead.kubernetes.keyring.url = 'http://127.0.0.1:9/Release.key';
    const unreachable = await t.throwsAsync(resolveLockedInputs(dead, want, { storeDir: join(dir, 'store2') }));
    t.true(unreachable instanceof UnreachableError);
    t.regex(unreachable!.message, /cannot reach http:\/\/127\.0\.0\.1:9\/Release\.key/);
    t.regex((unreachable as UnreachableError).hint ?? '', /--artifacts DIR/);
  });
});

testUnless(reason, 'an artifacts directory filled once builds offline; a corrupted file in it is named', async (t) => {
  await withTempDir(async (outer) => {
    let lock: ImageLock | undefined;
    const out = join(outer, 'artifacts');
    await withRepo(async ({ key, url }) => {
      lock = (await refreshLock({ config, kubernetesRepository: url, keyFingerprint: key.fingerprint, parts: ['kubernetes'] })).lock;
      await resolveLockedInputs(lock, { packages: KUBERNETES_PACKAGES, manifests: [], images: false }, { storeDir: out });
    });
    // The server is gone now: only the directory is left.
    const want = { packages: KUBERNETES_PACKAGES, manifests: [], images: false };
    const offline = await resolveLockedInputs(lock!, want, { artifactsDir: out, storeDir: join(outer, 'unused') });
    t.true(offline.debs.kubelet!.startsWith(out));
    await writeFile(offline.debs.kubelet!, 'corrupt');
    const error = await t.throwsAsync(resolveLockedInputs(lock!, want, { artifactsDir: out, storeDir: join(outer, 'unused') }));
    t.regex(error!.message, /package kubelet 1\.37\.2-1\.1 \(.*kubelet_1\.37\.2-1\.1_amd64\.deb\): sha256 \w+ does not match/);
  });
});

test('a lock missing an entry is an error naming the field and what to run', async (t) => {
  const lock = emptyLock(config);
  const error = await t.throwsAsync(resolveLockedInputs(lock, { packages: KUBERNETES_PACKAGES, manifests: ['calico'], images: true }, { storeDir: '/nonexistent' }));
  t.regex(error!.message, /the lock file has no kubernetes\.keyring\.sha256 \(https:\/\/pkgs\.k8s\.io\/core:\/stable:\/v1\.37\/deb\/Release\.key\)/);
  t.regex((error as { hint?: string }).hint ?? '', /npm run image:lock/);
});

test('the lock file round-trips, rejects bad fields by path, and diffs line by line', async (t) => {
  await withTempDir(async (dir) => {
    const a = emptyLock(config);
    const b = structuredClone(a);
    b.kubernetes.packages.kubelet = { version: '1.37.2-1.1', url: 'https://x/kubelet.deb', sha256: 'a'.repeat(64), size: 10 };
    b.manifests.calico = { url: a.manifests.calico!.url, sha256: 'b'.repeat(64) };
    await writeImageLock(join(dir, 'l.json'), b);
    t.deepEqual(await readImageLock(join(dir, 'l.json')), b);
    t.deepEqual(diffImageLocks(a, b).sort(), [
      '+ kubernetes.packages.kubelet.sha256 = ' + 'a'.repeat(64),
      '+ kubernetes.packages.kubelet.size = 10',
      '+ kubernetes.packages.kubelet.url = https://x/kubelet.deb',
      '+ kubernetes.packages.kubelet.version = 1.37.2-1.1',
      '+ manifests.calico.sha256 = ' + 'b'.repeat(64),
    ]);
    t.deepEqual(diffImageLocks(b, a).filter((l) => l.startsWith('-')).length, 5);
    const bad = JSON.parse(await readFile(join(dir, 'l.json'), 'utf8'));
    bad.kubernetes.packages.kubelet.sha256 = 'nothex';
    await writeFile(join(dir, 'bad.json'), JSON.stringify(bad));
    const error = await t.throwsAsync(readImageLock(join(dir, 'bad.json')));
    t.regex(error!.message, /kubernetes\.packages\.kubelet\.sha256: a sha256 in hex/);
  });
});

testUnless(reason, 'image:lock never writes images of another Kubernetes version than its packages: new kubeadm → images refreshed too, or a refusal naming why', async (t) => {
  await withRepo(async ({ key, url }) => {
    const previous = emptyLock(config, url, key.fingerprint);
    previous.kubernetes.packages.kubeadm = { version: '1.37.1-1.1', url: `${url}amd64/kubeadm_1.37.1-1.1_amd64.deb`, sha256: 'a'.repeat(64) };
    previous.images = { 'registry.k8s.io/kube-apiserver:v1.37.1': { digest: `sha256:${'b'.repeat(64)}`, amd64: `sha256:${'b'.repeat(64)}` } };
    // The upstream manifests the image list needs are unreachable here (GitHub): the images cannot follow kubeadm to 1.37.2.
    const error = await t.throwsAsync(refreshLock({ config, previous, kubernetesRepository: url, keyFingerprint: key.fingerprint, parts: ['kubernetes'] }));
    t.true(error instanceof LabError, error?.message);
    t.regex(error!.message, /the lock was not written: kubeadm moved from 1\.37\.1-1\.1 to 1\.37\.2-1\.1, but the container images could not be refreshed \(cannot reach https:\/\/raw\.githubusercontent\.com\/.*\), and the locked ones belong to the old version/);
    // A lock whose control-plane images name another version is refused as well, whoever made it.
    const stale = structuredClone(previous);
    stale.kubernetes.packages.kubeadm!.version = '1.37.2-1.1';
    t.is(imagesVersionMismatch(stale), 'its images registry.k8s.io/kube-apiserver:v1.37.1 are not of Kubernetes v1.37.2 (kubeadm 1.37.2-1.1)');
    t.is(imagesVersionMismatch(previous), undefined);
  });
});

testUnless(reason, 'image:lock --only images works from the locked kubeadm and manifests instead of requiring them in the same run', async (t) => {
  const { lock } = await withRepoLock();
  const previous = structuredClone(lock);
  for (const m of Object.values(previous.manifests)) m.sha256 ??= 'd'.repeat(64);
  previous.images = {};
  const { skipped } = await refreshLock({ config, previous, parts: ['images'], kubernetesRepository: previous.kubernetes.repository, keyFingerprint: previous.kubernetes.keyring.fingerprint });
  // GitHub is unreachable here: the part gets as far as fetching the locked manifest (before: refused up front, "not read in this run").
  t.is(skipped.length, 1);
  t.notRegex(skipped[0]!.reason, /could not be read|not locked yet/);
  t.regex(skipped[0]!.reason, /^cannot reach https:\/\/raw\.githubusercontent\.com\/projectcalico\/calico\//);
});

async function withRepoLock(): Promise<{ lock: ImageLock }> {
  let lock: ImageLock | undefined;
  await withRepo(async ({ key, url }) => {
    lock = (await refreshLock({ config, kubernetesRepository: url, keyFingerprint: key.fingerprint, parts: ['kubernetes'] })).lock;
  });
  return { lock: lock! };
}
