/**
 * Backup and restore pieces on real tools: the volume listing from real find and sha256sum,
 * streaming through age without holding the data, and the cluster restore plan validated
 * against the Kubernetes models and kubeadm's v1beta4 types (no cluster runs here: the plan is
 * rendered and checked, not applied).
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PersistentVolume, PersistentVolumeClaim, Secret, Namespace } from 'kubernetes-models/v1';
import { stringify } from 'yaml';
import { run, runPipeline } from '../../core/exec.ts';
import { CommandError } from '../../core/errors.ts';
import { sha256File } from '../../core/hash.ts';
import { parseClaims } from '../../lab/backup/backup.ts';
import { compareVolumes, parseVolumeListing, renderVolumeListingCommands, type BackupManifest } from '../../lab/backup/manifest.ts';
import { parseHostFlag, renderRemoteSshArgs } from '../../lab/backup/remote.ts';
import { claimDirectory, kubeadmDocs, planClusterRestore, renderPreboundYaml } from '../../lab/restore/cluster-plan.ts';
import { validateKubeadmV1beta4 } from '../../lab/restore/kubeadm-v1beta4.ts';
import { KUBELET_CONFIGURATION, renderInitConfiguration } from '../../cloud-init/addons/kubeadm-config.ts';
import { missingCommand, testUnless, withTempDir } from '../helpers.ts';

testUnless(missingCommand('find', 'sha256sum'), 'the volume listing parses real find and sha256sum output, odd names included', async (t) => {
  await withTempDir(async (dir) => {
    const root = join(dir, 'volumes');
    const files: Record<string, string> = { 'default/db/data': 'rows', 'mail/cur/1700.M1:2,S': 'mail', 'web/with space.txt': 'x', 'web/tab\there': 'tab' };
    for (const [p, c] of Object.entries(files)) {
      await mkdir(join(root, p, '..'), { recursive: true });
      await writeFile(join(root, p), c);
    }
    // The same argv the remote runs, minus sudo.
    const cmds = renderVolumeListingCommands(root);
    const sizes = await run(cmds.sizes[1]!, cmds.sizes.slice(2));
    const sums = await run(cmds.sums[1]!, cmds.sums.slice(2));
    const listing = parseVolumeListing(sizes.stdout, sums.stdout, root);
    t.deepEqual(listing.map((f) => f.path), Object.keys(files).sort());
    for (const f of listing) {
      t.is(f.sha256, createHash('sha256').update(files[f.path]!).digest('hex'), f.path);
      t.is(f.bytes, Buffer.byteLength(files[f.path]!), f.path);
    }
    const changed = listing.map((f) => (f.path === 'web/with space.txt' ? { ...f, sha256: '0'.repeat(64) } : f)).filter((f) => f.path !== 'default/db/data');
    t.deepEqual(compareVolumes(listing, [...changed, { path: 'new', bytes: 1, sha256: '1'.repeat(64) }]), { checked: 4, missing: ['default/db/data'], mismatched: ['web/with space.txt'], extra: ['new'] });
  });
});

testUnless(missingCommand('age', 'age-keygen', 'head'), 'a stream goes through age to a 0600 file and back without being held in memory; a failed stage names the pipeline', async (t) => {
  await withTempDir(async (dir) => {
    await run('age-keygen', ['-o', join(dir, 'identity')]);
    const recipient = (await run('age-keygen', ['-y', join(dir, 'identity')])).stdout.trim();
    const plain = join(dir, 'plain');
    await runPipeline([{ cmd: 'head', args: ['-c', String(128 * 2 ** 20), '/dev/urandom'] }], { stdoutFile: plain });
    const rss = process.memoryUsage().rss;
    await runPipeline([{ cmd: 'cat', args: [plain] }, { cmd: 'age', args: ['-r', recipient] }], { stdoutFile: join(dir, 'enc.age'), stdoutMode: 0o600 });
    await runPipeline([{ cmd: 'age', args: ['-d', '-i', join(dir, 'identity')] }, { cmd: 'cat', args: [] }], { stdinFile: join(dir, 'enc.age'), stdoutFile: join(dir, 'back') });
    t.true(process.memoryUsage().rss - rss < 64 * 2 ** 20, 'the 128 MiB went between processes, not through this one');
    t.is(await sha256File(join(dir, 'back')), await sha256File(plain));
    const { stat } = await import('node:fs/promises');
    t.is((await stat(join(dir, 'enc.age'))).mode & 0o777, 0o600);
    const error = await t.throwsAsync(runPipeline([{ cmd: 'cat', args: [plain] }, { cmd: 'age', args: ['-d', '-i', join(dir, 'identity')] }], { stdoutFile: join(dir, 'x') }));
    t.true(error instanceof CommandError);
    t.regex(error!.message, /cat .*plain \| age -d -i/);
  });
});

test('remote targets: --host parsing and ssh arguments that pin the host key', (t) => {
  t.deepEqual(parseHostFlag('admin@203.0.113.10:2200', '/k'), { user: 'admin', host: '203.0.113.10', port: 2200, identityFile: '/k', knownHostsFile: undefined });
  t.is(parseHostFlag('ops@[2001:db8::10]', '/k').host, '2001:db8::10');
  t.throws(() => parseHostFlag('203.0.113.10', '/k'), { message: /not USER@ADDRESS/ });
  const args = renderRemoteSshArgs({ user: 'a', host: 'h', port: 22, identityFile: '/k', knownHostsFile: '/kh', hostKeyAlias: 'x' });
  t.true(args.includes('StrictHostKeyChecking=yes') && args.includes('UserKnownHostsFile=/kh') && args.includes('HostKeyAlias=x'));
});

const ETCD_MANIFEST_MEMBER = { name: 'mx1', initialCluster: 'mx1=https://203.0.113.10:2380', initialAdvertisePeerUrls: 'https://203.0.113.10:2380', containerDataDir: '/var/lib/etcd', hostDataDir: '/srv/etcd', image: 'registry.k8s.io/etcd:3.6.5-0' };

function manifestWithCluster(): BackupManifest {
  return {
    format: 1, startedAt: 't', finishedAt: 't', source: { kind: 'server', name: 'mx1', host: 'admin@203.0.113.10:22' }, image: {}, encryptedTo: [], items: [], preBackup: [],
    volumes: {
      root: '/var/lib/labsmith/volumes',
      totalBytes: 3,
      files: [{ path: 'mail/maildir/cur/1', bytes: 1, sha256: 'a'.repeat(64) }, { path: 'pvc-123_default_db/base/1', bytes: 2, sha256: 'b'.repeat(64) }],
    },
    cluster: {
      taken: true, nodeName: 'mx1', caSecret: true, member: ETCD_MANIFEST_MEMBER, etcd: { hash: 1, revision: 42, totalKey: 10, totalSize: 100 },
      claims: parseClaims(JSON.stringify({ items: [
        { metadata: { namespace: 'mail', name: 'maildir' }, spec: { accessModes: ['ReadWriteOnce'], storageClassName: 'local-path', resources: { requests: { storage: '10Gi' } } } },
        { metadata: { namespace: 'default', name: 'db' }, spec: { resources: { requests: { storage: '5Gi' } } } },
      ] })),
    },
  };
}

const CLUSTER_CONFIGURATION = stringify({
  apiVersion: 'kubeadm.k8s.io/v1beta4', kind: 'ClusterConfiguration', kubernetesVersion: 'v1.37.0', clusterName: 'mx1',
  networking: { dnsDomain: 'cluster.local', podSubnet: '10.42.0.0/16', serviceSubnet: '10.96.0.0/12' },
  etcd: { local: { dataDir: '/var/lib/etcd' } }, apiServer: { certSANs: ['mx1.example.org'] }, controllerManager: { extraArgs: [{ name: 'allocate-node-cidrs', value: 'true' }] },
  certificatesDir: '/etc/kubernetes/pki', imageRepository: 'registry.k8s.io',
});
const CA_SECRET = stringify({ apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls', metadata: { name: 'labsmith-lab-ca', namespace: 'cert-manager', uid: 'u', resourceVersion: '7', creationTimestamp: '2026-01-01T00:00:00Z', managedFields: [{}] }, data: { 'tls.crt': 'Y2VydA==', 'tls.key': 'a2V5' } });

test('rebuild plan: PKI, kubeadm init (v1beta4, same node name), CA secret before issuers, pre-bound volumes valid for the Kubernetes models', (t) => {
  const plan = planClusterRestore({ manifest: manifestWithCluster(), mode: 'rebuild', clusterConfiguration: CLUSTER_CONFIGURATION, caSecret: CA_SECRET, advertiseAddress: '198.51.100.7' });
  const docs = kubeadmDocs(plan.kubeadmConfig) as any[];
  t.deepEqual(validateKubeadmV1beta4(docs), []);
  t.is(docs[0].nodeRegistration.name, 'mx1');
  t.is(docs[0].localAPIEndpoint.advertiseAddress, '198.51.100.7');
  t.is(docs[1].etcd.local.dataDir, '/srv/etcd', "the old manifest's hostPath");
  t.is(docs[1].networking.podSubnet, '10.42.0.0/16');
  // The lab seed's renderer: its InitConfiguration (the node's name and address given) and its kubelet document.
  t.deepEqual(docs[0], renderInitConfiguration({ nodeName: 'mx1', advertiseAddress: '198.51.100.7' }));
  t.deepEqual(docs[0].nodeRegistration.kubeletExtraArgs, [{ name: 'node-ip', value: '198.51.100.7' }]);
  t.deepEqual(docs.map((d) => d.kind), ['InitConfiguration', 'ClusterConfiguration', 'KubeletConfiguration']);
  t.deepEqual(docs[2], KUBELET_CONFIGURATION);
  t.false('ignorePreflightErrors' in docs[0].nodeRegistration);
  // The validator can fail: a v1beta3-era field and a wrong kind of extraArgs are refused.
  t.notDeepEqual(validateKubeadmV1beta4([{ ...docs[1], controllerManager: { extraArgs: { 'allocate-node-cidrs': 'true' } } }]), []);
  t.notDeepEqual(validateKubeadmV1beta4([{ ...docs[0], nodeRegistration: { ...docs[0].nodeRegistration, kubeletExtraArgs: { a: 'b' } } }]), []);
  const titles = plan.steps.map((s) => s.title);
  const at = (re: RegExp) => titles.findIndex((x) => re.test(x));
  t.true(at(/PKI/) < at(/Initialising/) && at(/Initialising/) < at(/CA secret/) && at(/CA secret/) < at(/Pre-binding/), titles.join(' → '));
  t.deepEqual(plan.steps.find((s) => /Initialising/.test(s.title))!.remote, ['sudo', 'kubeadm', 'init', '--config', '/etc/labsmith/restore/kubeadm.yaml']);

  for (const o of plan.prebound) {
    const Model = o.kind === 'PersistentVolume' ? PersistentVolume : o.kind === 'PersistentVolumeClaim' ? PersistentVolumeClaim : Namespace;
    t.notThrows(() => new Model(o as never).validate(), `${o.kind} ${o.metadata.name}`);
  }
  const pvs = plan.prebound.filter((o) => o.kind === 'PersistentVolume') as any[];
  const pvcs = plan.prebound.filter((o) => o.kind === 'PersistentVolumeClaim') as any[];
  t.deepEqual(pvs.map((p) => [p.spec.claimRef.namespace, p.spec.claimRef.name, p.spec.hostPath.path, p.spec.persistentVolumeReclaimPolicy]), [
    ['mail', 'maildir', '/var/lib/labsmith/volumes/mail/maildir', 'Retain'],
    ['default', 'db', '/var/lib/labsmith/volumes/pvc-123_default_db', 'Retain'],
  ]);
  t.deepEqual(pvcs.map((c) => c.spec.volumeName), pvs.map((p) => p.metadata.name));
  t.deepEqual(plan.prebound.filter((o) => o.kind === 'Namespace').map((o) => o.metadata.name), ['default', 'mail']);
  t.regex(renderPreboundYaml(plan.prebound), /claimRef:/);
  // The model can fail: a PV without capacity is refused.
  t.throws(() => new PersistentVolume({ ...pvs[0], spec: { ...pvs[0].spec, accessModes: 'ReadWriteOnce' } } as never).validate());

  const secret = kubeadmDocs(plan.caSecret!)[1] as any;
  t.notThrows(() => new Secret(secret).validate());
  t.deepEqual(Object.keys(secret.metadata).sort(), ['name', 'namespace'], 'uid, resourceVersion and managedFields of the old cluster are dropped');
});

test('--etcd plan: the snapshot restored with --bump-revision --mark-compacted into the dataDir kubeadm will mount, then init ignoring DirAvailable', (t) => {
  const plan = planClusterRestore({ manifest: manifestWithCluster(), mode: 'etcd', clusterConfiguration: CLUSTER_CONFIGURATION, advertiseAddress: '198.51.100.7', etcdImage: 'registry.k8s.io/etcd:3.6.5-0' });
  const docs = kubeadmDocs(plan.kubeadmConfig) as any[];
  t.deepEqual(validateKubeadmV1beta4(docs), []);
  t.deepEqual(docs[0].nodeRegistration.ignorePreflightErrors, ['DirAvailable--var-lib-etcd']);
  t.is(docs[0].nodeRegistration.name, 'mx1');
  const restore = plan.steps.find((s) => s.remote.includes('etcdutl'))!.remote;
  const etcdutl = restore.slice(restore.indexOf('etcdutl'));
  t.deepEqual(etcdutl, ['etcdutl', 'snapshot', 'restore', '/srv/labsmith-etcd-snapshot.db', '--data-dir', '/srv/etcd', '--name', 'mx1', '--initial-cluster', 'mx1=https://198.51.100.7:2380',
    '--initial-advertise-peer-urls', 'https://198.51.100.7:2380', '--bump-revision', '1000000000', '--mark-compacted']);
  t.deepEqual(plan.steps.find((s) => s.remote.includes('init'))!.remote.slice(-1), ['--ignore-preflight-errors=DirAvailable--var-lib-etcd']);
  t.is(plan.etcdDataDir, '/srv/etcd');
  t.true(plan.steps.at(-1)!.checksEtcdManifest);
  t.deepEqual(plan.prebound, [], 'the PVs and PVCs come back with etcd');
  t.throws(() => planClusterRestore({ manifest: { ...manifestWithCluster(), cluster: { taken: false, reason: 'no cluster' } }, mode: 'rebuild', clusterConfiguration: '' }), { message: /no cluster state/ });
  t.throws(() => planClusterRestore({ manifest: manifestWithCluster(), mode: 'rebuild', clusterConfiguration: 'apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n' }), { message: /not kubeadm\.k8s\.io\/v1beta4/ });
});

test('a claim is found under <ns>/<pvc> (stable pathPattern) or local-path\'s generated <pv>_<ns>_<pvc>', (t) => {
  const files = manifestWithCluster().volumes.files;
  t.is(claimDirectory({ namespace: 'mail', name: 'maildir', storage: '1Gi', accessModes: [] }, files), 'mail/maildir');
  t.is(claimDirectory({ namespace: 'default', name: 'db', storage: '1Gi', accessModes: [] }, files), 'pvc-123_default_db');
  t.is(claimDirectory({ namespace: 'x', name: 'new', storage: '1Gi', accessModes: [] }, files), 'x/new');
});
