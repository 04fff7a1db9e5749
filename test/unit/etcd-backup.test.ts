/**
 * etcd snapshot save, status and restore against Debian's real etcd 3.5, started on loopback
 * with TLS and client-certificate auth (an openssl CA as kubeadm makes one). The restore goes
 * into the directory a kubeadm-shaped static pod manifest mounts, read from its hostPath.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { run } from '../../core/exec.ts';
import { sleep } from '../../core/sleep.ts';
import { ensureEtcdTools, parseEtcdVersion } from '../../lab/backup/etcd-tools.ts';
import { parseEtcdManifest, readSnapshotStatus, renderSnapshotRestoreArgs, restoreSnapshot, saveSnapshotWithHostEtcdctl, type EtcdClientTls } from '../../lab/backup/etcd.ts';
import { freePorts } from '../../lab/ports.ts';
import { missingCommand, testUnless, withTempDir } from '../helpers.ts';

/** A kubeadm-shaped etcd manifest whose data volume is at `hostDataDir` (what kubeadm writes, with the host path moved). */
function kubeadmEtcdManifest(hostDataDir: string, peerUrl: string): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'etcd', namespace: 'kube-system' },
    spec: {
      containers: [{
        name: 'etcd',
        image: 'registry.k8s.io/etcd:3.6.5-0',
        command: ['etcd', '--advertise-client-urls=https://10.0.2.15:2379', '--cert-file=/etc/kubernetes/pki/etcd/server.crt', '--client-cert-auth=true',
          '--data-dir=/var/lib/etcd', `--initial-advertise-peer-urls=${peerUrl}`, `--initial-cluster=mail=${peerUrl}`, '--name=mail'],
        volumeMounts: [{ mountPath: '/var/lib/etcd', name: 'etcd-data' }, { mountPath: '/etc/kubernetes/pki/etcd', name: 'etcd-certs' }],
      }],
      volumes: [{ hostPath: { path: '/etc/kubernetes/pki/etcd', type: 'DirectoryOrCreate' }, name: 'etcd-certs' }, { hostPath: { path: hostDataDir, type: 'DirectoryOrCreate' }, name: 'etcd-data' }],
    },
  });
}

test('the data directory comes from the hostPath mounted at --data-dir, not from --data-dir itself', (t) => {
  const m = parseEtcdManifest(kubeadmEtcdManifest('/srv/etcd-disk/data', 'https://10.0.2.15:2380'));
  t.is(m.containerDataDir, '/var/lib/etcd');
  t.is(m.hostDataDir, '/srv/etcd-disk/data');
  t.is(m.name, 'mail');
  t.is(m.initialCluster, 'mail=https://10.0.2.15:2380');
  t.deepEqual(renderSnapshotRestoreArgs({ snapshot: 's.db', member: m, bumpRevision: 5 }), [
    'snapshot', 'restore', 's.db', '--data-dir', '/srv/etcd-disk/data', '--name', 'mail', '--initial-cluster', 'mail=https://10.0.2.15:2380',
    '--initial-advertise-peer-urls', 'https://10.0.2.15:2380', '--bump-revision', '5', '--mark-compacted',
  ]);
  const noVolume = kubeadmEtcdManifest('/x', 'https://a:2380').replace('mountPath: /var/lib/etcd', 'mountPath: /var/lib/other');
  t.throws(() => parseEtcdManifest(noVolume), { message: /no volume is mounted at --data-dir \/var\/lib\/etcd/ });
  t.is(parseEtcdVersion('etcdutl version: 3.5.16\nAPI version: 3.5')?.minor, 5);
});

async function makePki(dir: string): Promise<{ ca: string; server: { cert: string; key: string }; client: { cert: string; key: string } }> {
  const p = (n: string) => join(dir, n);
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.crt'), '-days', '2', '-subj', '/CN=etcd-ca', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature']);
  for (const [name, ext] of [['server', 'extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost'], ['client', 'extendedKeyUsage=clientAuth']] as const) {
    await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', `/CN=${name === 'client' ? 'kube-etcd-healthcheck-client' : 'mail'}`]);
    await writeFile(p(`${name}.ext`), `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n${ext}\n`);
    await run('openssl', ['x509', '-req', '-in', p(`${name}.csr`), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', p(`${name}.ext`), '-out', p(`${name}.crt`)]);
  }
  return { ca: p('ca.crt'), server: { cert: p('server.crt'), key: p('server.key') }, client: { cert: p('client.crt'), key: p('client.key') } };
}

async function startEtcd(bin: string, args: string[], log: string): Promise<ChildProcess> {
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  child.on('exit', () => void writeFile(log, stderr));
  return child;
}

async function stopEtcd(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([gone, sleep(10_000)]);
  if (child.exitCode === null && !child.signalCode) child.kill('SIGKILL');
}

async function waitHealthy(etcdctl: string, tls: EtcdClientTls): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const r = await run(etcdctl, ['--endpoints', tls.endpoint, '--cacert', tls.caCert, '--cert', tls.clientCert, '--key', tls.clientKey, 'endpoint', 'health'], { allowFailure: true, timeoutMs: 5000 });
    if (r.exitCode === 0) return;
    await sleep(200);
  }
  throw new Error('etcd did not become healthy');
}

const reason = missingCommand('openssl', 'apt-get', 'dpkg-deb');

testUnless(reason, "etcd 3.5: snapshot save with client certs, status, restore with --bump-revision into the manifest's hostPath; the keys survive", async (t) => {
  t.timeout(5 * 60_000);
  const tools = await ensureEtcdTools();
  t.regex(tools.version, /^3\.(5|6)\./);
  await withTempDir(async (dir) => {
    const pki = await makePki(dir);
    const { client, peer } = await freePorts(['client', 'peer']);
    const tls: EtcdClientTls = { endpoint: `https://127.0.0.1:${client}`, caCert: pki.ca, clientCert: pki.client.cert, clientKey: pki.client.key };
    const peerUrl = `http://127.0.0.1:${peer}`;
    const serve = (dataDir: string) => [
      '--name', 'mail', '--data-dir', dataDir,
      '--listen-client-urls', tls.endpoint, '--advertise-client-urls', tls.endpoint,
      '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl, '--initial-cluster', `mail=${peerUrl}`,
      '--client-cert-auth', '--trusted-ca-file', pki.ca, '--cert-file', pki.server.cert, '--key-file', pki.server.key,
    ];
    const ctl = (...args: string[]) => run(tools.etcdctl, ['--endpoints', tls.endpoint, '--cacert', tls.caCert, '--cert', tls.clientCert, '--key', tls.clientKey, ...args]);

    let etcd = await startEtcd(tools.etcd, serve(join(dir, 'original')), join(dir, 'etcd1.log'));
    let before: number;
    try {
      await waitHealthy(tools.etcdctl, tls);
      // Without a client certificate the server refuses: the snapshot below really used the certs.
      const anonymous = await run(tools.etcdctl, ['--endpoints', tls.endpoint, '--cacert', tls.caCert, 'get', '/x'], { allowFailure: true, timeoutMs: 10_000 });
      t.not(anonymous.exitCode, 0);
      for (let i = 0; i < 20; i++) await ctl('put', `/registry/configmaps/default/cm-${i}`, `value-${i}`);
      await ctl('put', '/registry/secrets/cert-manager/labsmith-lab-ca', 'ca-bytes');
      before = Number(JSON.parse((await ctl('get', '/registry/secrets/cert-manager/labsmith-lab-ca', '-w', 'json')).stdout).header.revision);
      await saveSnapshotWithHostEtcdctl(tools.etcdctl, tls, join(dir, 'snapshot.db'));
      // Written after the snapshot: must not come back.
      await ctl('put', '/registry/after-snapshot', 'no');
    } finally {
      await stopEtcd(etcd);
    }

    const status = await readSnapshotStatus(tools.etcdutl, join(dir, 'snapshot.db'));
    t.is(status.revision, before);
    t.true(status.totalKey >= 21);

    const hostDataDir = join(dir, 'disk2', 'etcd-data');
    await mkdir(join(dir, 'disk2'));
    const member = parseEtcdManifest(kubeadmEtcdManifest(hostDataDir, peerUrl));
    t.is(member.hostDataDir, hostDataDir);
    const bump = 1_000_000;
    await restoreSnapshot(tools.etcdutl, { snapshot: join(dir, 'snapshot.db'), member, bumpRevision: bump });
    t.true(existsSync(join(hostDataDir, 'member', 'snap', 'db')), 'restored where the manifest mounts, not in --data-dir');

    etcd = await startEtcd(tools.etcd, serve(hostDataDir), join(dir, 'etcd2.log'));
    try {
      await waitHealthy(tools.etcdctl, tls);
      t.is((await ctl('get', '/registry/secrets/cert-manager/labsmith-lab-ca', '--print-value-only')).stdout, 'ca-bytes');
      t.is((await ctl('get', '/registry/configmaps/default/cm-19', '--print-value-only')).stdout, 'value-19');
      t.is((await ctl('get', '/registry/after-snapshot', '--print-value-only')).stdout, '');
      const after = Number(JSON.parse((await ctl('put', '/registry/new', 'x', '-w', 'json')).stdout).header.revision);
      t.true(after > before + bump, `revision ${after} is bumped past ${before} + ${bump}`);
      // --mark-compacted: old revisions are gone, so watchers resync instead of replaying.
      const old = await run(tools.etcdctl, ['--endpoints', tls.endpoint, '--cacert', tls.caCert, '--cert', tls.clientCert, '--key', tls.clientKey, 'get', '/registry/configmaps/default/cm-0', '--rev', String(before)], { allowFailure: true });
      t.regex(old.stderr, /compacted/);
    } finally {
      await stopEtcd(etcd);
    }
  });
});
