/**
 * The image plan for `kubernetes.containerd: "2"` and `image:build --stage-upgrade` (pure): what
 * mmdebstrap installs, what the layer writes (the version 3 containerd config, the apt
 * preference), what is staged and not installed, and the errors for an incomplete lock.
 */
import test from 'ava';
import { FIXTURE_IMAGE_INPUTS } from '../helpers.ts';
import { parse as parseToml } from 'smol-toml';
import { KUBERNETES_GUEST_PATHS, STAGED_UPGRADE_PATHS } from '../../core/paths.ts';
import { LabError } from '../../core/errors.ts';
import { fillDefaults } from '../../config/defaults.ts';
import { kubernetesLayerInputs, stagedUpgradeInputs } from '../../images/build.ts';
import { STAGING_DIR } from '../../images/mmdebstrap.ts';
import { planImageBuild, STAGED_INDEX_HOOK, type ImageInputs } from '../../images/recipe.ts';
import { renderKubernetesRootfsFiles } from '../../images/kubernetes/rootfs-files.ts';
import { emptyLock } from '../../images/lock/refresh.ts';
import type { ImageLock, LockedDebianPackage } from '../../images/lock/lock.ts';
import { payloadFiles } from '../../lab/upgrade/plan.ts';
import { lockedDebEntry } from '../../images/archive/collect.ts';

const inputs: ImageInputs = FIXTURE_IMAGE_INPUTS;

const sha = (c: string) => c.repeat(64);
const CONTAINERD2: LockedDebianPackage = {
  name: 'containerd', version: '2.1.9~ds1-1', suite: 'forky', sha256: sha('9'), size: 1, url: 'http://deb.debian.org/debian/pool/main/c/containerd/containerd_2.1.9~ds1-1_amd64.deb',
  release: { uri: 'http://deb.debian.org/debian', sha256: sha('8'), date: 'Mon, 30 Nov 2026 20:00:00 UTC' }, stanza: 'Package: containerd\nVersion: 2.1.9~ds1-1\n',
};

function lock(): ImageLock {
  const l = emptyLock(fillDefaults({ kubernetes: { version: '1.38', containerd: '2' } }, '/s'));
  l.kubernetes.keyring.sha256 = sha('1');
  for (const name of ['kubelet', 'kubeadm', 'kubectl']) l.kubernetes.packages[name] = { version: '1.38.0-1.1', url: `https://pkgs.k8s.io/core:/stable:/v1.38/deb/amd64/${name}_1.38.0-1.1_amd64.deb`, sha256: sha('2') };
  l.images['registry.k8s.io/pause:3.10.1'] = { digest: `sha256:${sha('3')}`, amd64: `sha256:${sha('4')}` };
  l.containerd = CONTAINERD2;
  return l;
}

function targetLock(): ImageLock {
  const l = emptyLock(fillDefaults({}, '/s'));
  l.kubernetes.keyring.sha256 = sha('1');
  l.kubernetes.packages.kubeadm = { version: '1.37.2-1.1', url: 'https://pkgs.k8s.io/core:/stable:/v1.37/deb/amd64/kubeadm_1.37.2-1.1_amd64.deb', sha256: sha('2') };
  l.images['registry.k8s.io/pause:3.10.1'] = { digest: `sha256:${sha('3')}`, amd64: `sha256:${sha('4')}` };
  const repo = 'https://pkgs.k8s.io/core:/stable:/v1.38/deb/';
  l.target = {
    kubernetes: {
      minor: '1.38', repository: repo, keyring: { url: `${repo}Release.key`, fingerprint: 'F'.repeat(40), sha256: sha('1') },
      packages: Object.fromEntries(['kubelet', 'kubeadm', 'kubectl', 'cri-tools', 'kubernetes-cni'].map((n) => [n, { version: n.startsWith('kube') && n !== 'kubernetes-cni' ? '1.38.0-1.1' : '1.38.0-1.1', url: `${repo}amd64/${n}.deb`, sha256: sha('5') }])),
    },
    images: { 'registry.k8s.io/kube-apiserver:v1.38.0': { digest: `sha256:${sha('6')}`, amd64: `sha256:${sha('7')}` } },
    manifests: {},
    containerd: CONTAINERD2,
  };
  return l;
}

test('containerd "2": the pinned forky .deb replaces the suite\'s containerd on the package list, with the version 3 config and the apt preference', (t) => {
  const l = lock();
  const seventeen = planImageBuild(inputs, '/layers', kubernetesLayerInputs(l));
  const two = planImageBuild(inputs, '/layers', kubernetesLayerInputs(l, { containerd: '2' }));
  const includes = (p: typeof two) => p.kubernetes!.mmdebstrap!.argv.filter((a) => a.startsWith('--include='));
  t.true(includes(seventeen).some((a) => /(^--include=|,)containerd(,|$)/.test(a)), '1.7: the suite\'s containerd by name');
  t.false(includes(two).some((a) => /(^--include=|,)containerd(,|$)/.test(a)), '2: not the suite\'s containerd');
  t.true(includes(two).includes(`--include=${STAGING_DIR}/containerd_2.1.9~ds1-1_amd64.deb`));
  t.deepEqual(two.kubernetes!.mmdebstrap!.inputs[`${STAGING_DIR}/containerd_2.1.9~ds1-1_amd64.deb`], { kind: 'deb', name: 'containerd', version: '2.1.9~ds1-1', sha256: sha('9') });
  t.not(two.kubernetes!.hash, seventeen.kubernetes!.hash);
  t.is(two.rootfs.hash, seventeen.rootfs.hash, 'the OS layer is the same: containerd moves in the Kubernetes layer');

  const files = renderKubernetesRootfsFiles(kubernetesLayerInputs(l, { containerd: '2' }));
  const config = parseToml(files['etc/containerd/config.toml']!.content) as any;
  t.is(config.version, 3);
  t.is(config.plugins['io.containerd.cri.v1.images'].pinned_images.sandbox, 'registry.k8s.io/pause:3.10.1', "kubeadm's pause from the lock");
  t.is(files[KUBERNETES_GUEST_PATHS.containerdPreference]!.content, '# Written by labsmith: only containerd comes from forky, at the locked version.\nPackage: *\nPin: release n=forky\nPin-Priority: -1\n\nPackage: containerd\nPin: version 2.1.9~ds1-1\nPin-Priority: 1001\n');
  const old = renderKubernetesRootfsFiles(kubernetesLayerInputs(l));
  t.is((parseToml(old['etc/containerd/config.toml']!.content) as any).version, 2);
  t.is(old[KUBERNETES_GUEST_PATHS.containerdPreference], undefined);
});

test('containerd "2" with a lock that has no containerd entry is an error naming the fix', (t) => {
  const l = lock();
  delete l.containerd;
  const e = t.throws(() => kubernetesLayerInputs(l, { containerd: '2' }), { instanceOf: LabError });
  t.regex(e!.message, /no containerd entry/);
  t.regex(e!.hint!, /image:lock -- --only containerd/);
});

test('--stage-upgrade 1.38: the target .debs and image archives are placed under the staged path, none installed, indexed by the hook', (t) => {
  const l = targetLock();
  const plain = planImageBuild(inputs, '/layers', kubernetesLayerInputs(l));
  const staged = planImageBuild(inputs, '/layers', kubernetesLayerInputs(l, { stageUpgrade: '1.38' }));
  const run = staged.kubernetes!.mmdebstrap!;
  t.not(staged.kubernetes!.hash, plain.kubernetes!.hash);
  t.deepEqual(run.argv.filter((a) => a.startsWith('--include=/')), plain.kubernetes!.mmdebstrap!.argv.filter((a) => a.startsWith('--include=/')), 'nothing of the target is on the install list');
  const debDir = `hooks/late/${STAGED_UPGRADE_PATHS.debs('1.38')}`;
  t.deepEqual(run.inputs[`${debDir}/kubeadm_1.38.0-1.1_amd64.deb`], { kind: 'deb', name: 'kubeadm', version: '1.38.0-1.1', sha256: sha('5'), key: 'target/kubeadm' });
  t.deepEqual(run.inputs[`${debDir}/containerd_2.1.9~ds1-1_amd64.deb`], { kind: 'deb', name: 'containerd', version: '2.1.9~ds1-1', sha256: sha('9'), key: 'target/containerd' });
  t.deepEqual(run.inputs[`hooks/late/${STAGED_UPGRADE_PATHS.images('1.38')}/registry.k8s.io_kube-apiserver_v1.38.0.oci.tar`], { kind: 'image', ref: 'registry.k8s.io/kube-apiserver:v1.38.0', digest: `sha256:${sha('7')}`, key: 'target/registry.k8s.io/kube-apiserver:v1.38.0' });
  t.is(run.files['hooks/index-staged-upgrade.sh']!.content, STAGED_INDEX_HOOK);
  t.true(run.argv.some((a) => a.endsWith('/hooks/index-staged-upgrade.sh')));
  const target = JSON.parse(run.files[`hooks/late/${STAGED_UPGRADE_PATHS.target('1.38')}`]!.content);
  t.is(target.kubernetes.minor, '1.38');
  t.is(target.containerd.version, '2.1.9~ds1-1');
  // The image's own containerd stays 1.7: the payload is for the rehearsal.
  t.is((parseToml(run.files['hooks/late/etc/containerd/config.toml']!.content) as any).version, 2);
});

test('--stage-upgrade refuses a lock without a complete target section for that minor, naming what is missing', (t) => {
  const none = lock();
  t.regex(t.throws(() => stagedUpgradeInputs(none, '1.38'))!.message, /no target section/);
  const l = targetLock();
  t.regex(t.throws(() => stagedUpgradeInputs(l, '1.39'))!.message, /target section is for Kubernetes 1\.38/);
  delete l.target!.kubernetes.packages.kubeadm;
  l.target!.images = {};
  const e = t.throws(() => stagedUpgradeInputs(l, '1.38'))!;
  t.regex(e.message, /target\.kubernetes\.packages\.kubeadm \(https:\/\/pkgs\.k8s\.io\/core:\/stable:\/v1\.38\/deb\/\)/);
  t.regex(e.message, /target\.images/);
  t.regex((e as LabError).hint!, /image:lock -- --kubernetes 1\.38/);
});

test('what --stage-upgrade places is what lab:upgrade looks for: the plan\'s payload files are the staged inputs', (t) => {
  const l = targetLock();
  const run = planImageBuild(inputs, '/layers', kubernetesLayerInputs(l, { stageUpgrade: '1.38' })).kubernetes!.mmdebstrap!;
  const base = `hooks/late/${STAGED_UPGRADE_PATHS.dir}/1.38/`;
  const staged = Object.keys(run.inputs).filter((p) => p.startsWith(base)).map((p) => p.slice(base.length)).sort();
  t.deepEqual(staged, payloadFiles(l.target!));
});

test("the input archive names a containerd 2 build's and a staged build's .debs by their lock entries", (t) => {
  const l = targetLock();
  l.containerd = CONTAINERD2;
  t.deepEqual(lockedDebEntry(l, 'kubeadm'), { entry: 'kubernetes.packages.kubeadm', url: l.kubernetes.packages.kubeadm!.url });
  t.deepEqual(lockedDebEntry(l, 'containerd'), { entry: 'containerd', url: CONTAINERD2.url });
  t.deepEqual(lockedDebEntry(l, 'target/kubeadm'), { entry: 'target.kubernetes.packages.kubeadm', url: l.target!.kubernetes.packages.kubeadm!.url });
  t.deepEqual(lockedDebEntry(l, 'target/containerd'), { entry: 'target.containerd', url: CONTAINERD2.url });
  t.throws(() => lockedDebEntry(l, 'target/nope'), { message: /the lock does not list/ });
});
