/**
 * The cluster's first boot: the seed a Kubernetes lab gets (checked by `cloud-init schema`),
 * the bootstrap script's resume-after-failure behaviour (its state and kubeconfig paths pointed
 * into a temp dir, with kubeadm and kubectl stand-ins since neither can run here), and the DNS
 * probe against a real DNS server on loopback.
 */
import test from 'ava';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parse } from 'yaml';
import { run } from '../../core/exec.ts';
import { BOOTSTRAP_PATHS } from '../../core/paths.ts';
import { renderAddonManifests, type UpstreamTexts } from '../../cloud-init/addons/bundle.ts';
import { BOOTSTRAP_UNIT, renderBootstrapScript, renderDnsProbeScript } from '../../cloud-init/bootstrap.ts';
import { renderClusterSeed } from '../../cloud-init/cluster-seed.ts';
import { renderSeedFiles, type SeedSecrets } from '../../cloud-init/user-data.ts';
import { fillDefaults } from '../../config/defaults.ts';
import { startDnsServer } from '../fixtures/dns-server.ts';
import { missingCommand, testUnless, withTempDir } from '../helpers.ts';

const SHARED = '../shared/upstream';
const haveUpstream = existsSync(join(SHARED, 'calico-v3.32.1.yaml')) ? undefined : `upstream manifests not found at ${SHARED}`;
const config = fillDefaults({ name: 'mail', addons: { logTarget: 'udp://10.0.2.2:5514' } }, '/state');
const secrets: SeedSecrets = { sshPublicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIM0 lab', hostKey: { privateKey: '-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n', publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIM1 host' }, caCert: 'CA-CERT-PEM\n', tlsCert: 'TLS\n', tlsKey: 'KEY\n' };
const LOCKED_IMAGES = ['registry.k8s.io/kube-apiserver:v1.37.2', 'registry.k8s.io/pause:3.10.1', 'registry.k8s.io/coredns/coredns:v1.13.1'];

/** The real Calico and local-path manifests; cert-manager's static manifest is not in ../shared, so its CRDs stand in for its text. */
async function upstreamTexts(): Promise<UpstreamTexts> {
  const crds = join(SHARED, 'cert-manager-v1.21.1-crds');
  return {
    calico: await readFile(join(SHARED, 'calico-v3.32.1.yaml'), 'utf8'),
    'local-path': await readFile(join(SHARED, 'local-path-storage-v0.0.36.yaml'), 'utf8'),
    'cert-manager': (await Promise.all(readdirSync(crds).sort().map((f) => readFile(join(crds, f), 'utf8')))).join('\n---\n'),
  };
}

type WriteFile = { path: string; content: string; permissions: string; encoding?: string };

testUnless(haveUpstream ?? missingCommand('cloud-init'), 'a Kubernetes lab seed: valid cloud-config, add-ons compressed and intact, secrets 0600, bootstrap started without blocking', async (t) => {
  const upstream = await upstreamTexts();
  const cluster = renderClusterSeed(config, { kubernetesVersion: 'v1.37.2', lockedImages: LOCKED_IMAGES, upstream, ca: { certPem: 'CA-CERT-PEM\n', keyPem: 'CA-KEY-PEM\n' } });
  const seed = renderSeedFiles(config, secrets, cluster);
  await withTempDir(async (dir) => {
    await writeFile(join(dir, 'user-data'), seed['user-data']);
    const schema = await run('cloud-init', ['schema', '--config-file', join(dir, 'user-data')], { allowFailure: true });
    t.is(schema.exitCode, 0, schema.stdout + schema.stderr);
  });
  const doc = parse(seed['user-data']) as { write_files: WriteFile[]; runcmd: string[][] };
  const files = Object.fromEntries(doc.write_files.map((f) => [f.path, f]));
  const content = (f: WriteFile) => (f.encoding === 'gz+b64' ? gunzipSync(Buffer.from(f.content, 'base64')).toString('utf8') : f.content);

  for (const addon of renderAddonManifests(config, upstream)) t.is(content(files[`${BOOTSTRAP_PATHS.dir}/${addon.file}`]!), addon.text, addon.file);
  const tls = files[`${BOOTSTRAP_PATHS.dir}/30-lab-tls.yaml`]!;
  t.is(tls.permissions, '0600');
  t.true(content(tls).includes('CA-KEY-PEM'), 'the CA key reaches the guest only through the seed');
  t.is(files[BOOTSTRAP_PATHS.kubeadmConfig]!.permissions, '0600');
  t.regex(files[BOOTSTRAP_PATHS.kubeadmConfig]!.content, /kubernetesVersion: v1\.37\.2/);
  t.regex(files['/etc/containerd/config.toml']!.content, /sandbox_image = "registry\.k8s\.io\/pause:3\.10\.1"/, "containerd's sandbox image is kubeadm's pause");
  t.truthy(files['/etc/rsyslog.d/60-labsmith-containers.conf'], 'log forwarding is configured when a target is set');
  t.falsy(files['/etc/systemd/system/labsmith-placeholder-ingress.service'], 'no placeholder where Traefik owns the NodePorts');
  t.deepEqual(doc.runcmd.find((c) => c.includes(BOOTSTRAP_UNIT)), ['systemctl', 'enable', '--now', '--no-block', BOOTSTRAP_UNIT]);
  t.log(`user-data: ${(seed['user-data'].length / 1024).toFixed(0)} KiB`);
  t.true(seed['user-data'].length < 2 * 2 ** 20);
});

test('a lock without a pause image cannot make a cluster seed', (t) => {
  const upstream = { calico: '', 'local-path': '', 'cert-manager': '' };
  t.throws(() => renderClusterSeed(config, { kubernetesVersion: 'v1.37.2', lockedImages: ['registry.k8s.io/kube-apiserver:v1.37.2'], upstream, ca: { certPem: '', keyPem: '' } }), { message: /lists no pause image/ });
});

const STUBS = {
  // kubeadm writes admin.conf like the real one; every call is logged.
  kubeadm: `#!/bin/sh\necho "kubeadm $*" >> "$CALLS"\necho admin > "$LABSMITH_ADMIN_KUBECONFIG"\n`,
  // kubectl fails to apply the file named in $FAIL_APPLY (a webhook not serving yet); answers the rest.
  kubectl: `#!/bin/sh\necho "kubectl $*" >> "$CALLS"\ncase "$*" in *"apply"*"$FAIL_APPLY"*) [ -n "$FAIL_APPLY" ] && exit 1;; esac\ncase "$*" in *"get service kube-dns"*) echo 10.96.0.10;; esac\nexit 0\n`,
  systemctl: `#!/bin/sh\necho "systemctl $*" >> "$CALLS"\n`,
  python3: `#!/bin/sh\necho "python3 $*" >> "$CALLS"\necho 10.96.0.1\n`,
  sleep: '#!/bin/sh\nexec /bin/sleep 0.2\n',
};

testUnless(missingCommand('bash'), 'the bootstrap resumes after a failed step, never runs kubeadm init twice, and does nothing once complete', async (t) => {
  await withTempDir(async (dir) => {
    const addons = [
      { file: '10-calico.yaml', text: 'kind: List\n' },
      { file: '20-cert-manager.yaml', text: 'kind: List\n' },
      { file: '30-lab-tls.yaml', text: 'kind: List\n' },
    ];
    const bin = join(dir, 'bin');
    await mkdir(bin);
    for (const [name, body] of Object.entries(STUBS)) await writeFile(join(bin, name), body, { mode: 0o755 });
    const script = join(dir, 'bootstrap.sh');
    await writeFile(script, renderBootstrapScript({ addons, dnsDomain: 'cluster.local' }));
    await chmod(script, 0o755);
    t.is((await run('bash', ['-n', script], { allowFailure: true })).exitCode, 0, 'bash accepts the script');
    // The node's state and kubeconfig paths point into the test directory: the host's stay untouched.
    const calls = join(dir, 'calls.log');
    const once = (failApply: string) =>
      run(script, [], {
        env: { PATH: `${bin}:/usr/sbin:/usr/bin:/sbin:/bin`, CALLS: calls, FAIL_APPLY: failApply, LABSMITH_BOOTSTRAP_STATE: join(dir, 'state'), LABSMITH_ADMIN_KUBECONFIG: join(dir, 'admin.conf'), LABSMITH_MAX_WAIT: '1' },
        allowFailure: true,
      });
    const first = await once('20-cert-manager.yaml');
    t.not(first.exitCode, 0, 'the failing apply fails the unit');
    t.regex(first.stdout, /calico: done in/);
    t.notRegex(first.stdout, /complete/);

    const second = await once('');
    t.is(second.exitCode, 0, second.stdout + second.stderr);
    t.regex(second.stdout, /images: already done/);
    t.regex(second.stdout, /kubeadm-init: already done/);
    t.regex(second.stdout, /calico: already done/);
    t.regex(second.stdout, /cert-manager: done in/);
    t.regex(second.stdout, /labsmith-bootstrap: complete/);
    const log = await readFile(calls, 'utf8');
    t.is(log.split('\n').filter((l) => l.startsWith('kubeadm init')).length, 1, 'kubeadm init ran once');
    t.regex(log, /python3 \/usr\/local\/lib\/labsmith\/dns-query\.py 10\.96\.0\.10 kubernetes\.default\.svc\.cluster\.local/);
    const order = log.split('\n').filter((l) => / apply /.test(l)).map((l) => /bootstrap\/(\S+)/.exec(l)?.[1]);
    t.deepEqual([...new Set(order)], ['10-calico.yaml', '20-cert-manager.yaml', '30-lab-tls.yaml'], 'add-ons go in file order');

    const third = await once('');
    t.is(third.exitCode, 0);
    t.regex(third.stdout, /bootstrap complete before; nothing to do/);
  });
});

testUnless(missingCommand('python3'), 'the DNS probe reads A answers over UDP and TCP and fails on NXDOMAIN', async (t) => {
  await withTempDir(async (dir) => {
    const probe = join(dir, 'dns-query.py');
    await writeFile(probe, renderDnsProbeScript(), { mode: 0o755 });
    const server = await startDnsServer({ 'kubernetes.default.svc.cluster.local': '10.96.0.1' });
    try {
      for (const transport of [[], ['--tcp']]) {
        const ok = await run('python3', [probe, '127.0.0.1', 'kubernetes.default.svc.cluster.local', ...transport, '--port', String(server.port)]);
        t.is(ok.stdout.trim(), '10.96.0.1', transport.join(' ') || 'udp');
      }
      const nx = await run('python3', [probe, '127.0.0.1', 'missing.svc.cluster.local', '--port', String(server.port)], { allowFailure: true });
      t.not(nx.exitCode, 0);
      t.regex(nx.stderr, /rcode 3/);
    } finally {
      await server.close();
    }
  });
});

testUnless(haveUpstream, 'lab:render writes the kubeadm config and every add-on it has inputs for, and no secret', async (t) => {
  const { renderLab } = await import('../../lab/render.ts');
  await withTempDir(async (dir) => {
    const upstream = await upstreamTexts();
    const written = await renderLab(config, dir, { kubernetesVersion: 'v1.37.2', upstream: { calico: upstream.calico } });
    const names = written.filter((p) => p.includes('/cluster/')).map((p) => p.split('/').pop());
    t.deepEqual(names, ['kubeadm.yaml', '10-calico.yaml', '50-traefik.yaml', '60-network-policies.yaml'], 'cert-manager and local-path are left out without their manifests');
    t.regex(await readFile(join(dir, 'cluster', '10-calico.yaml'), 'utf8'), /value: 10\.42\.0\.0\/16/);
    const everything = (await Promise.all(written.map((p) => readFile(p, 'utf8')))).join('\n');
    t.notRegex(everything, /BEGIN (EC |RSA |OPENSSH )?PRIVATE KEY/);
  });
});
