/**
 * A Kubernetes layer built end to end through the product's own build code (planImageBuild,
 * mmdebstrap for real, the shared cached tools and OS layers) from FIXTURES standing in for the
 * upstream inputs that are unreachable here: a signed apt repository on loopback with packages
 * named as the real ones (kubelet, kubeadm, kubectl, cri-tools, kubernetes-cni) whose contents are
 * our own small test payloads, and fixture OCI archives in an `--artifacts` directory. The lock's
 * Kubernetes part is read from the fixture repository by image:lock's own code; the image list
 * comes from the fixture kubeadm (a tiny script printing the list the real one would, clearly a
 * fixture) through the product's kubeadm runner. Then, inside the built rootfs tarball: the deb822
 * source and keyring, the held packages, the import unit enabled, the image archives and list.
 * Also: a disk build killed mid-way leaves nothing in the shared tools layer.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../core/exec.ts';
import { sha256File } from '../../core/hash.ts';
import { IMAGE_FILES, KUBERNETES_GUEST_PATHS } from '../../core/paths.ts';
import { Progress } from '../../core/progress.ts';
import { mountsUnder, removeTree } from '../../core/remove-tree.ts';
import { readTar } from '../../core/tar.ts';
import { sleep } from '../../core/sleep.ts';
import { clusterImages, workloadImages } from '../../cloud-init/addons/bundle.ts';
import { renderKubeadmConfig } from '../../cloud-init/addons/kubeadm-config.ts';
import { ARTIFACT_DIRS, artifactFileName, imageArchiveName, resolveLockedInputs } from '../../images/artifacts/store.ts';
import { buildImage } from '../../images/build.ts';
import { kubeadmImages, kubernetesVersionOf } from '../../images/kubernetes/kubeadm.ts';
import { keyFingerprints, KUBERNETES_PACKAGES } from '../../images/kubernetes/repository.ts';
import { IMPORT_UNIT, renderKubernetesAptSource } from '../../images/kubernetes/rootfs-files.ts';
import { refreshLock } from '../../images/lock/refresh.ts';
import { osOnlySourceAtMirrorHead } from '../../images/source.ts';
import { indexAndSign, makeDeb, makeSigningKey, serveDirectory } from '../fixtures/apt-repo.ts';
import { buildOciLayout, ociArchiveFromLayout } from '../fixtures/oci.ts';
import { missingCommand, notRoot, testUnless, throwawayLabConfig, withTempDir } from '../helpers.ts';

const UPSTREAM = '/work/shared/upstream';
const reason = notRoot() ?? missingCommand('mmdebstrap', 'gpg', 'gpgv', 'dpkg-deb', 'apt-ftparchive', 'skopeo', 'unshare');

const FIXTURE_VERSION = '1.37.2-1.1';
/** What kubeadm v1.37.2 lists; printed by the fixture kubeadm below. */
const FIXTURE_KUBEADM_IMAGES = [
  'registry.k8s.io/kube-apiserver:v1.37.2',
  'registry.k8s.io/kube-controller-manager:v1.37.2',
  'registry.k8s.io/kube-scheduler:v1.37.2',
  'registry.k8s.io/kube-proxy:v1.37.2',
  'registry.k8s.io/coredns/coredns:v1.12.4',
  'registry.k8s.io/pause:3.10.1',
  'registry.k8s.io/etcd:3.6.5-0',
];

const fixtureScript = (name: string, body: string) => ({
  content: `#!/bin/sh\n# labsmith TEST FIXTURE standing in for ${name}: not the real program.\n${body}`,
  mode: 0o755,
});

/** The fixture repository: the five packages named as the real ones, fixture payloads inside. */
async function buildFixtureRepo(repo: string): Promise<void> {
  await makeDeb(repo, 'kubelet', FIXTURE_VERSION, 'iptables, iproute2, conntrack', {
    files: {
      'usr/bin/kubelet': fixtureScript('kubelet', 'echo "labsmith fixture kubelet" >&2\nexit 1\n'),
      'usr/lib/systemd/system/kubelet.service': { content: '[Unit]\nDescription=labsmith TEST FIXTURE kubelet\n\n[Service]\nExecStart=/usr/bin/kubelet\n\n[Install]\nWantedBy=multi-user.target\n', mode: 0o644 },
    },
  });
  await makeDeb(repo, 'kubeadm', FIXTURE_VERSION, 'kubelet (>= 1.19.0), kubectl (>= 1.13.0), cri-tools (>= 1.30.0), kubernetes-cni (>= 1.2.0)', {
    files: {
      'usr/bin/kubeadm': fixtureScript('kubeadm', `if [ "$1 $2 $3" = "config images list" ]; then\n  printf '%s\\n' ${FIXTURE_KUBEADM_IMAGES.map((i) => `'${i}'`).join(' ')}\n  exit 0\nfi\necho "labsmith fixture kubeadm: only 'config images list' is implemented" >&2\nexit 1\n`),
    },
  });
  await makeDeb(repo, 'kubectl', FIXTURE_VERSION, undefined, { files: { 'usr/bin/kubectl': fixtureScript('kubectl', 'exit 1\n') } });
  await makeDeb(repo, 'cri-tools', '1.37.0-1.1', undefined, { files: { 'usr/bin/crictl': fixtureScript('crictl', 'exit 1\n') } });
  await makeDeb(repo, 'kubernetes-cni', '1.7.1-1.1', undefined, { files: { 'opt/cni/bin/README.labsmith-fixture': { content: 'labsmith test fixture\n', mode: 0o644 } } });
  await rm(join(repo, '.build'), { recursive: true });
}

/** A stand-in for a user's own image (workloads[].images), built from the fixture OCI layout like the others. */
const FIXTURE_WORKLOAD_IMAGE = 'registry.labsmith.invalid/fixture/workload:1.0';

testUnless(reason, 'a Kubernetes layer from the fixture repository and fixture images (a workload image among them): keyring, deb822 source, held packages, import unit and image list, for real', async (t) => {
  t.timeout(45 * 60_000);
  await withTempDir(async (dir) => {
    // A workload image rides the same path as the cluster's own: locked, archived, baked, listed for the import.
    const config = await throwawayLabConfig('it-k8s-layer', dir, `workloads:\n  - { path: fixture-workloads, images: ["${FIXTURE_WORKLOAD_IMAGE}"] }\n`);
    const base = await osOnlySourceAtMirrorHead(config);
    const key = await makeSigningKey(dir, 'fixture-repo');
    const repo = join(dir, 'repo');
    await buildFixtureRepo(repo);
    await indexAndSign(repo, key);
    await cp(key.publicKey, join(repo, 'Release.key'));
    const server = await serveDirectory(repo);
    const artifacts = join(dir, 'artifacts');
    const layersToDrop: string[] = [];
    try {
      // image:lock's own code reads the fixture repository (gpgv against the fixture key, newest amd64 of the minor).
      const { lock } = await refreshLock({ config, previous: base.lock, kubernetesRepository: server.url, keyFingerprint: key.fingerprint, parts: ['kubernetes'] });
      t.is(lock.kubernetes.packages.kubeadm?.version, FIXTURE_VERSION);
      const fetched = await resolveLockedInputs(lock, { packages: KUBERNETES_PACKAGES, manifests: [], images: false }, { storeDir: artifacts });

      // The image list, as image:lock derives it: the (fixture) kubeadm's own list, plus the suite's images.
      const kubeadmConfig = renderKubeadmConfig(config, { kubernetesVersion: kubernetesVersionOf(FIXTURE_VERSION), advertiseAddress: '10.0.2.15', certSANs: [] });
      const listed = await kubeadmImages(fetched.debs.kubeadm!, kubeadmConfig);
      t.deepEqual(listed, FIXTURE_KUBEADM_IMAGES);
      const refs = clusterImages(listed, [], workloadImages(config));
      t.true(refs.includes(FIXTURE_WORKLOAD_IMAGE));
      const { layout, manifestDigest } = await buildOciLayout(join(dir, 'oci'), 'fixture');
      await mkdir(join(artifacts, ARTIFACT_DIRS.images), { recursive: true });
      for (const ref of refs) {
        await ociArchiveFromLayout(layout, 'fixture', ref, join(artifacts, ARTIFACT_DIRS.images, imageArchiveName(ref)));
        lock.images[ref] = { digest: manifestDigest, amd64: manifestDigest };
      }
      // The manifests are verified by the build, not baked in: the real upstream files where we have them, a marked fixture otherwise.
      for (const [name, m] of Object.entries(lock.manifests)) {
        const file = join(artifacts, ARTIFACT_DIRS.files, artifactFileName(m.url));
        const upstream = { calico: 'calico-v3.32.1.yaml', 'local-path': 'local-path-storage-v0.0.36.yaml' }[name];
        if (upstream) await copyFile(join(UPSTREAM, upstream), file);
        else await writeFile(file, `# labsmith test fixture standing in for ${m.url}\n`);
        m.sha256 = await sha256File(file);
      }
      await server.close();

      const lines: string[] = [];
      const image = await buildImage({
        debian: config.debian,
        source: { lock, kubernetes: true, kubernetesMinor: config.kubernetes.version, artifactsDir: artifacts },
        progress: new Progress('plain', (l) => lines.push(l)),
      });
      const layer = image.plan.kubernetes!;
      layersToDrop.push(layer.dir, image.plan.disk.dir);
      t.false(image.cacheHits.kubernetes, 'the Kubernetes layer was built in this run');
      t.deepEqual(image.manifest.kubernetes, { minor: '1.37', images: Object.keys(lock.images).sort() });

      const wanted = new Set(['var/lib/dpkg/status', KUBERNETES_GUEST_PATHS.aptSource, KUBERNETES_GUEST_PATHS.keyring, KUBERNETES_GUEST_PATHS.imageList, KUBERNETES_GUEST_PATHS.importUnit]);
      const entries = await readTar(join(layer.dir, IMAGE_FILES.rootfsTar), { readContent: (p) => wanted.has(p) });
      const byPath = new Map(entries.map((e) => [e.path, e]));
      t.is(byPath.get(KUBERNETES_GUEST_PATHS.aptSource)?.content?.toString(), renderKubernetesAptSource(server.url), 'the deb822 source names the repository and the keyring');
      const keyring = join(dir, 'keyring.gpg');
      await writeFile(keyring, byPath.get(KUBERNETES_GUEST_PATHS.keyring)!.content!);
      t.deepEqual(await keyFingerprints(keyring), [key.fingerprint], 'the keyring holds exactly the pinned key');
      const status = byPath.get('var/lib/dpkg/status')!.content!.toString();
      for (const p of KUBERNETES_PACKAGES) t.regex(status, new RegExp(`^Package: ${p}\\nStatus: hold ok installed$`, 'm'), `${p} is held`);
      t.regex(status, new RegExp(`^Package: kubeadm\\nStatus: hold ok installed\\n(?:.+\\n)*?Version: ${FIXTURE_VERSION.replace(/\./g, '\\.')}$`, 'm'));
      t.truthy(byPath.get(`etc/systemd/system/multi-user.target.wants/${IMPORT_UNIT}`), 'the import unit is enabled');
      t.truthy(byPath.get('etc/systemd/system/multi-user.target.wants/kubelet.service'), 'the kubelet is enabled');
      t.truthy(byPath.get(KUBERNETES_GUEST_PATHS.importUnit));
      t.is(byPath.get(KUBERNETES_GUEST_PATHS.imageList)?.content?.toString(), refs.map((r) => `${r}\n`).join(''));
      for (const ref of refs) t.truthy(byPath.get(`${KUBERNETES_GUEST_PATHS.imagesDir}/${imageArchiveName(ref)}`), ref);
      const leaked = entries.filter((e) => /labsmith-build-dir|labsmith-staging|\.tmp-|\.cache\/labsmith/.test(e.path)).map((e) => e.path);
      t.deepEqual(leaked, [], 'no build path (nor the mount points of the local .deb files) left in the tree');

      // A disk build killed mid-way (the whole process group, as Ctrl-C would) leaves nothing in the shared tools layer.
      const toolsRoot = join(image.plan.tools.dir, 'root');
      const before = (await readdir(toolsRoot)).sort();
      const out = join(dir, 'killed-disk');
      await mkdir(out);
      const ids = { rootUuid: image.plan.rootUuid, espVolumeId: image.plan.espVolumeId, diskGuid: image.plan.diskGuid, espPartGuid: image.plan.espPartGuid, rootPartGuid: image.plan.rootPartGuid, sourceDateEpoch: image.plan.sourceDateEpoch };
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/disk-build-child.ts', toolsRoot, join(layer.dir, IMAGE_FILES.rootfsTar), out, JSON.stringify(ids)], { stdio: 'ignore', detached: true });
      const exited = new Promise((r) => child.once('exit', r));
      for (let i = 0; i < 600 && !existsSync(join(out, 'work', 'root.img')); i++) await sleep(50);
      t.true(existsSync(join(out, 'work', 'root.img')), 'the disk build was mid-way (mke2fs writing) when killed');
      process.kill(-child.pid!, 'SIGKILL');
      await exited;
      for (let i = 0; i < 100 && (await run('pgrep', ['-g', String(child.pid)], { allowFailure: true })).exitCode === 0; i++) await sleep(100);
      t.deepEqual((await readdir(toolsRoot)).sort(), before, 'no work-* directory in the tools layer');
      t.deepEqual(await readdir(join(toolsRoot, 'mnt')), [], 'its /mnt is untouched');
      t.deepEqual(mountsUnder(await readFile('/proc/self/mounts', 'utf8'), image.plan.tools.dir), [], 'no mount left under the tools layer');
    } finally {
      await server.close().catch(() => undefined);
      // The fixture's layers are of no use to anyone else: the shared cache keeps only real ones.
      for (const d of layersToDrop) await removeTree(d);
    }
  });
}, { serial: true });
