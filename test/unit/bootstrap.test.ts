/**
 * The cluster's first boot: the seed a Kubernetes lab gets (checked by `cloud-init schema`), the
 * shipped bootstrap script run for real with a parameter file pointing into a temp dir (as the
 * unit passes the node's), against the kubeadm/kubectl stand-ins in test/fixtures/kube-standins.ts
 * since neither can run here: resume after a failed step, kubeadm init retried after a reset when
 * it stopped half-way, the kube-dns address read on every try; the DNS probe against a real DNS
 * server on loopback; and lab:render's seed for Kubernetes and OS-only labs.
 */
import test from 'ava';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../core/exec.ts';
import { BOOTSTRAP_PATHS, GUEST_PARAM_FILES, GUEST_PATHS } from '../../core/paths.ts';
import { renderAddonManifests, type UpstreamTexts } from '../../cloud-init/addons/bundle.ts';
import { BOOTSTRAP_UNIT, renderBootstrapParams } from '../../cloud-init/bootstrap.ts';
import { guestScript, guestScriptPath } from '../../cloud-init/guest-scripts.ts';
import { renderClusterSeed } from '../../cloud-init/cluster-seed.ts';
import { renderSeedFiles, type SeedSecrets } from '../../cloud-init/user-data.ts';
import { fillDefaults } from '../../config/defaults.ts';
import { startDnsServer } from '../fixtures/dns-server.ts';
import { STANDIN_DNS_SERVICE_ADDRESS, writeKubeStandins } from '../fixtures/kube-standins.ts';
import { missingCommand, readSeedUserData, testUnless, withTempDir } from '../helpers.ts';

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

testUnless(haveUpstream ?? missingCommand('cloud-init'), 'a Kubernetes lab seed: valid cloud-config, add-ons intact in the archive part, secrets 0600, bootstrap started without blocking', async (t) => {
  const upstream = await upstreamTexts();
  const cluster = renderClusterSeed(config, { kubernetesVersion: 'v1.37.2', lockedImages: LOCKED_IMAGES, upstream, ca: { certPem: 'CA-CERT-PEM\n', keyPem: 'CA-KEY-PEM\n' } });
  const seed = renderSeedFiles(config, secrets, cluster);
  const { cc: doc, files, archived, cloudConfigText } = readSeedUserData(seed['user-data']);
  await withTempDir(async (dir) => {
    await writeFile(join(dir, 'user-data'), cloudConfigText);
    const schema = await run('cloud-init', ['schema', '--config-file', join(dir, 'user-data')], { allowFailure: true });
    t.is(schema.exitCode, 0, schema.stdout + schema.stderr);
  });
  const content = (f: { content: string }) => f.content;
  // The cloud-config that cloud-init parses several times per stage stays small; the bulk is in the archive part.
  t.true(cloudConfigText.length < 16 * 1024, `cloud-config: ${cloudConfigText.length} bytes`);
  for (const addon of renderAddonManifests(config, upstream)) t.true(archived.has(`${BOOTSTRAP_PATHS.dir}/${addon.file}`), addon.file);

  for (const addon of renderAddonManifests(config, upstream)) t.is(content(files[`${BOOTSTRAP_PATHS.dir}/${addon.file}`]!), addon.text, addon.file);
  const tls = files[`${BOOTSTRAP_PATHS.dir}/30-lab-tls.yaml`]!;
  t.is(tls.permissions, '0600');
  t.true(content(tls).includes('CA-KEY-PEM'), 'the CA key reaches the guest only through the seed');
  t.is(files[BOOTSTRAP_PATHS.kubeadmConfig]!.permissions, '0600');
  t.regex(files[BOOTSTRAP_PATHS.kubeadmConfig]!.content, /kubernetesVersion: v1\.37\.2/);
  // containerd's config (with the locked pause image) is baked by the Kubernetes layer: the seed restarts and rewrites nothing.
  t.falsy(files['/etc/containerd/config.toml'], "the seed leaves containerd's baked config alone");
  t.truthy(files['/etc/rsyslog.d/60-labsmith-containers.conf'], 'log forwarding is configured when a target is set');
  t.falsy(files['/etc/systemd/system/labsmith-placeholder-ingress.service'], 'no placeholder where Traefik owns the NodePorts');
  t.deepEqual((doc.runcmd as string[][]).find((c) => c.includes(BOOTSTRAP_UNIT)), ['systemctl', 'enable', '--now', '--no-reload', '--no-block', BOOTSTRAP_UNIT]);
  t.log(`user-data: ${(seed['user-data'].length / 1024).toFixed(0)} KiB`);
  t.true(seed['user-data'].length < 2 * 2 ** 20);
});

test('a lock without a pause image cannot make a cluster seed', (t) => {
  const upstream = { calico: '', 'local-path': '', 'cert-manager': '' };
  t.throws(() => renderClusterSeed(config, { kubernetesVersion: 'v1.37.2', lockedImages: ['registry.k8s.io/kube-apiserver:v1.37.2'], upstream, ca: { certPem: '', keyPem: '' } }), { message: /lists no pause image/ });
});

/** Runs the shipped bootstrap script with a parameter file pointing into `dir`, as the unit runs it with the node's. */
async function bootstrapRig(dir: string) {
  const standins = await writeKubeStandins(dir);
  const addons = [
    { file: '10-calico.yaml', text: 'kind: List\n' },
    { file: '20-cert-manager.yaml', text: 'kind: List\n' },
    { file: '30-lab-tls.yaml', text: 'kind: List\n' },
  ];
  const params = join(dir, 'bootstrap.env');
  const state = join(dir, 'state');
  const bootstrapDir = join(dir, 'bootstrap');
  await writeFile(
    params,
    renderBootstrapParams(
      { addons, dnsDomain: 'cluster.local' },
      {
        paths: { BOOTSTRAP_DIR: bootstrapDir, KUBEADM_CONFIG: join(dir, 'kubeadm.yaml'), ADMIN_KUBECONFIG: join(standins.node, 'admin.conf'), STATE_DIR: state, DNS_PROBE: standins.dnsProbe },
        // Generous where a wait ends when ready; short for rollout, the apply retry's deadline the first test runs into.
        waits: { api: 30, node: 30, rollout: 3, certificate: 30, dns: 30 },
        pollSeconds: 0.2,
      },
    ),
  );
  const once = (fixture: Record<string, string> = {}) =>
    run(guestScriptPath('bootstrap'), [params], {
      env: { PATH: `${standins.bin}:/usr/sbin:/usr/bin:/sbin:/bin`, FIXTURE_CALLS: standins.calls, FIXTURE_NODE: standins.node, FIXTURE_FAIL_APPLY: '', FIXTURE_CONTROL_PLANE: '', FIXTURE_DNS_SERVICE_AFTER: '0', ...fixture },
      allowFailure: true,
    });
  const calls = async () => (existsSync(standins.calls) ? (await readFile(standins.calls, 'utf8')).split('\n') : []);
  return { standins, state, bootstrapDir, once, calls };
}

testUnless(missingCommand('bash', 'python3'), 'the bootstrap resumes after a failed add-on step, runs kubeadm init once, and does nothing once complete', async (t) => {
  await withTempDir(async (dir) => {
    const rig = await bootstrapRig(dir);
    const first = await rig.once({ FIXTURE_FAIL_APPLY: '20-cert-manager.yaml' });
    t.not(first.exitCode, 0, 'the failing apply fails the unit');
    t.regex(first.stdout, /calico: done in/);
    t.notRegex(first.stdout, /complete/);

    const second = await rig.once();
    t.is(second.exitCode, 0, second.stdout + second.stderr);
    t.regex(second.stdout, /images: already done/);
    t.regex(second.stdout, /kubeadm-init: already done/);
    t.regex(second.stdout, /calico: already done/);
    t.regex(second.stdout, /cert-manager: done in/);
    t.regex(second.stdout, /labsmith-bootstrap: complete/);
    const log = await rig.calls();
    t.is(log.filter((l) => l.startsWith('kubeadm init')).length, 1, 'kubeadm init ran once');
    t.false(log.some((l) => l.startsWith('kubeadm reset')), 'a finished init is never reset');
    t.true(log.includes('systemctl start labsmith-import-images.service'));
    t.true(log.includes(`dns-probe '${STANDIN_DNS_SERVICE_ADDRESS}' 'kubernetes.default.svc.cluster.local'`), log.join('\n'));
    const order = log.filter((l) => / apply /.test(l)).map((l) => /bootstrap\/(\S+)/.exec(l)?.[1]);
    t.deepEqual([...new Set(order)], ['10-calico.yaml', '20-cert-manager.yaml', '30-lab-tls.yaml'], 'add-ons go in file order');

    const third = await rig.once();
    t.is(third.exitCode, 0);
    t.regex(third.stdout, /bootstrap complete before; nothing to do/);
  });
});

testUnless(missingCommand('bash', 'python3'), 'kubeadm init that wrote admin.conf and then timed out runs again after a reset, so its later phases are not skipped', async (t) => {
  await withTempDir(async (dir) => {
    const rig = await bootstrapRig(dir);
    const first = await rig.once({ FIXTURE_CONTROL_PLANE: 'timeout' });
    t.not(first.exitCode, 0);
    t.regex(first.stderr, /wait-control-plane/);
    t.regex(first.stdout, /labsmith-bootstrap: kubeadm-init: failed \(exit \d+\)\s*$/, 'the failed step is named last');
    t.true(existsSync(join(rig.standins.node, 'admin.conf')), 'kubeadm wrote admin.conf before it failed (as the real one does)');
    t.false(existsSync(join(rig.state, 'kubeadm-init.done')));

    // The fixture models kubeadm's preflight: a plain second init on this half-made node fails.
    const plain = await run(join(rig.standins.bin, 'kubeadm'), ['init'], { env: { FIXTURE_CALLS: join(dir, 'plain.log'), FIXTURE_NODE: rig.standins.node }, allowFailure: true });
    t.not(plain.exitCode, 0);
    t.regex(plain.stderr, /kube-apiserver\.yaml already exists/);

    const second = await rig.once();
    t.is(second.exitCode, 0, second.stdout + second.stderr);
    t.regex(second.stdout, /an earlier init did not finish; resetting the node first/);
    t.regex(second.stdout, /\[upload-config\][\s\S]*\[bootstrap-token\][\s\S]*essential addon: CoreDNS[\s\S]*essential addon: kube-proxy/, 'the phases after wait-control-plane ran');
    const kubeadm = (await rig.calls()).filter((l) => l.startsWith('kubeadm'));
    t.deepEqual(kubeadm, [
      `kubeadm init --config ${join(dir, 'kubeadm.yaml')} --skip-token-print`,
      'kubeadm reset --force --cri-socket unix:///run/containerd/containerd.sock',
      `kubeadm init --config ${join(dir, 'kubeadm.yaml')} --skip-token-print`,
    ]);
    t.true(existsSync(join(rig.standins.node, 'initialised')));
    t.regex(second.stdout, /labsmith-bootstrap: complete/);
  });
});

testUnless(missingCommand('bash', 'python3'), 'the DNS wait reads the kube-dns Service address on every try', async (t) => {
  await withTempDir(async (dir) => {
    const rig = await bootstrapRig(dir);
    // kube-dns is NotFound for the first three reads: an address read once would stay empty.
    const r = await rig.once({ FIXTURE_DNS_SERVICE_AFTER: '3' });
    t.is(r.exitCode, 0, r.stdout + r.stderr);
    const log = await rig.calls();
    t.is(log.filter((l) => l.includes('get service kube-dns')).length, 4, 'read again after each miss');
    t.true(log.includes(`dns-probe '${STANDIN_DNS_SERVICE_ADDRESS}' 'kubernetes.default.svc.cluster.local'`));
    t.false(log.some((l) => l.startsWith("dns-probe ''")), 'the probe never ran without an address');
  });
});

testUnless(missingCommand('python3'), 'the DNS probe reads A answers over UDP and TCP and fails on NXDOMAIN', async (t) => {
  {
    const probe = guestScriptPath('dnsProbe');
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
  }
});

testUnless(haveUpstream, 'lab:render writes the kubeadm config and every add-on it has inputs for, secrets only as placeholders, and names what it went without', async (t) => {
  const { renderLab, PLACEHOLDER_CA } = await import('../../lab/render.ts');
  await withTempDir(async (dir) => {
    const upstream = await upstreamTexts();
    const warnings: string[] = [];
    const written = await renderLab(config, dir, { kubernetesVersion: 'v1.37.2', upstream: { calico: upstream.calico }, lockedImages: LOCKED_IMAGES }, (m) => warnings.push(m));
    const names = written.filter((p) => p.includes('/cluster/')).map((p) => p.split('/').pop());
    t.deepEqual(names, ['kubeadm.yaml', '10-calico.yaml', '30-lab-tls.yaml', '50-traefik.yaml', '60-network-policies.yaml'], 'cert-manager and local-path are left out without their manifests');
    t.deepEqual(warnings.map((w) => w.split(':')[0]), ['cert-manager', 'local-path']);
    t.regex(await readFile(join(dir, 'cluster', '10-calico.yaml'), 'utf8'), /value: 10\.42\.0\.0\/16/);
    t.true((await readFile(join(dir, 'cluster', '30-lab-tls.yaml'), 'utf8')).includes(PLACEHOLDER_CA.keyPem), 'the CA key is a named placeholder');
    const everything = (await Promise.all(written.map((p) => readFile(p, 'utf8')))).join('\n');
    t.notRegex(everything, /BEGIN (EC |RSA |OPENSSH )?PRIVATE KEY/);
  });
});

async function renderedUserData(dir: string, cfg: typeof config, cluster?: Parameters<typeof import('../../lab/render.ts').renderLab>[2]) {
  const { renderLab } = await import('../../lab/render.ts');
  await renderLab(cfg, dir, cluster);
  const { cc, files } = readSeedUserData(await readFile(join(dir, 'seed', 'user-data'), 'utf8'));
  return { files, runcmd: cc.runcmd as string[][] };
}

test('lab:render also writes user-data\'s halves to read: its cloud-config as cloud-init reads it, and each file its archive writes, at its guest path with its mode', async (t) => {
  const { renderLab } = await import('../../lab/render.ts');
  await withTempDir(async (dir) => {
    const written = await renderLab(config, dir, { kubernetesVersion: 'v1.37.2', upstream: {}, lockedImages: LOCKED_IMAGES });
    const { files, archived, cloudConfigText } = readSeedUserData(await readFile(join(dir, 'seed', 'user-data'), 'utf8'));
    t.is(await readFile(join(dir, 'seed-parts', 'cloud-config.yaml'), 'utf8'), cloudConfigText);
    t.true(archived.size > 3, 'a cluster seed archives the bootstrap, kubeadm config and add-ons');
    t.deepEqual(written.filter((p) => p.includes('/seed-parts/files/')).length, archived.size, 'the cloud-config\'s own write_files stay in cloud-config.yaml');
    for (const path of archived) {
      const file = files[path]!;
      const out = join(dir, 'seed-parts', 'files', path);
      t.true(written.includes(out), out);
      t.is(await readFile(out, 'utf8'), file.content, path);
      t.is((await stat(out)).mode & 0o777, parseInt(file.permissions, 8) & 0o777, path);
    }
  });
});

test('lab:render gives a Kubernetes lab the seed it really receives: the bootstrap and add-ons, no placeholder ingress', async (t) => {
  await withTempDir(async (dir) => {
    const { files, runcmd } = await renderedUserData(dir, config, { kubernetesVersion: 'v1.37.2', upstream: {}, lockedImages: LOCKED_IMAGES });
    t.falsy(files[GUEST_PATHS.placeholderUnit], 'no placeholder ingress where Traefik owns the NodePorts');
    t.falsy(files[GUEST_PATHS.placeholderScript]);
    t.is(files[BOOTSTRAP_PATHS.script]?.content, guestScript('bootstrap'));
    t.truthy(files[GUEST_PARAM_FILES.bootstrap]);
    t.truthy(files[`${BOOTSTRAP_PATHS.dir}/50-traefik.yaml`]);
    t.truthy(files[`${BOOTSTRAP_PATHS.dir}/30-lab-tls.yaml`]);
    t.true(runcmd.some((c) => c.includes(BOOTSTRAP_UNIT)));
    t.falsy(files['/etc/containerd/config.toml'], "containerd's config is the image's (baked with the locked pause image)");
  });
  // Without a lock at all (kubernetes.enabled, nothing fetched yet) it is still the Kubernetes seed.
  await withTempDir(async (dir) => {
    const { files } = await renderedUserData(dir, config);
    t.falsy(files[GUEST_PATHS.placeholderUnit]);
    t.truthy(files[BOOTSTRAP_PATHS.unit]);
  });
});

test('lab:render of an OS-only lab keeps the placeholder ingress and has no bootstrap', async (t) => {
  await withTempDir(async (dir) => {
    const osOnly = fillDefaults({ name: 'mail', kubernetes: { enabled: false } }, '/state');
    const { files, runcmd } = await renderedUserData(dir, osOnly, { upstream: {} });
    t.is(files[GUEST_PATHS.placeholderScript]?.content, guestScript('placeholderIngress'));
    t.truthy(files[GUEST_PATHS.placeholderUnit]);
    t.truthy(files[GUEST_PARAM_FILES.placeholderIngress]);
    t.falsy(files[BOOTSTRAP_PATHS.script]);
    t.false(runcmd.some((c) => c.includes(BOOTSTRAP_UNIT)));
    t.false(existsSync(join(dir, 'cluster')));
  });
});
