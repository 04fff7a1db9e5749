/** local-path patched on the real upstream manifest, and the image list derived from rendered manifests. */
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { StorageClass } from 'kubernetes-models/storage.k8s.io/v1';
import { CALICO, patchCalicoManifest, PRODUCTION_CALICO } from '../../cloud-init/addons/calico.ts';
import { imagesInManifests, parseKubeadmImageList } from '../../cloud-init/addons/images.ts';
import { patchLocalPathManifest } from '../../cloud-init/addons/local-path.ts';
import { renderTraefikObjects } from '../../cloud-init/addons/traefik.ts';
import { testUnless, UPSTREAM_DIR } from '../helpers.ts';

const UP = UPSTREAM_DIR;
const LOCAL = resolve(UP, 'local-path-storage-v0.0.36.yaml');
const HELPER = 'docker.io/library/busybox:1.37.0@sha256:' + 'b'.repeat(64);

testUnless(existsSync(LOCAL) ? undefined : `upstream manifest not found at ${LOCAL}`, 'local-path: default StorageClass, configured data dir, pinned helper image', (t) => {
  const upstream = readFileSync(LOCAL, 'utf8');
  t.true(imagesInManifests([upstream]).includes('docker.io/library/busybox'), 'upstream floats its helper image (no tag, no digest)');
  const patched = patchLocalPathManifest(upstream, { dataDir: '/srv/volumes', helperImage: HELPER });
  const docs = parseAllDocuments(patched).map((d) => d.toJSON());
  const sc = docs.find((d) => d.kind === 'StorageClass');
  t.is(sc.metadata.annotations['storageclass.kubernetes.io/is-default-class'], 'true');
  t.notThrows(() => new StorageClass(sc).validate());
  const cm = docs.find((d) => d.kind === 'ConfigMap');
  t.deepEqual(JSON.parse(cm.data['config.json']).nodePathMap, [{ node: 'DEFAULT_PATH_FOR_NON_LISTED_NODES', paths: ['/srv/volumes'] }]);
  t.is(parse(cm.data['helperPod.yaml']).spec.containers[0].image, HELPER);
  t.deepEqual(imagesInManifests([patched]), [HELPER, 'docker.io/rancher/local-path-provisioner:v0.0.36']);
  t.throws(() => patchLocalPathManifest('kind: Namespace\nmetadata: { name: x }\n', { dataDir: '/x', helperImage: HELPER }), { message: /no StorageClass local-path: upstream changed shape/ });
});

testUnless(existsSync(resolve(UP, 'calico-v3.32.1.yaml')) ? undefined : 'upstream Calico manifest not found', 'the image list comes from the manifests: Calico and Traefik', (t) => {
  const calico = patchCalicoManifest(readFileSync(resolve(UP, 'calico-v3.32.1.yaml'), 'utf8'), { podSubnet: '10.42.0.0/16', ...PRODUCTION_CALICO });
  const traefik = renderTraefikObjects({ image: 'docker.io/library/traefik:v3.7', httpNodePort: 30080, httpsNodePort: 30443 });
  const images = imagesInManifests([calico, ...traefik]);
  t.deepEqual(images, ['docker.io/library/traefik:v3.7', `quay.io/calico/cni:${CALICO.version}`, `quay.io/calico/kube-controllers:${CALICO.version}`, `quay.io/calico/node:${CALICO.version}`]);
});

test('kubeadm image list output parses to references', (t) => {
  const out = 'registry.k8s.io/kube-apiserver:v1.37.0\nregistry.k8s.io/pause:3.10.1\nregistry.k8s.io/coredns/coredns:v1.12.1\nW1126 some warning line\n';
  t.deepEqual(parseKubeadmImageList(out), ['registry.k8s.io/kube-apiserver:v1.37.0', 'registry.k8s.io/pause:3.10.1', 'registry.k8s.io/coredns/coredns:v1.12.1']);
});
