import test from 'ava';
import { parse as parseToml } from 'smol-toml';
import { stat, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { run } from '../../core/exec.ts';
import { renderContainerdConfig } from '../../cloud-init/containerd-config.ts';
import { writeSeedFiles, writeSeedIso } from '../../cloud-init/seed-iso.ts';
import { renderSeedFiles, type SeedSecrets } from '../../cloud-init/user-data.ts';
import { parseLabConfig } from '../../config/load.ts';
import { ensureLabCa, ensureSshKey, issueServerCertificate } from '../../lab/secrets.ts';
import { missingCommand, NEUTRAL_HOST, readSeedUserData, testUnless, withTempDir } from '../helpers.ts';

const config = (() => {
  const r = parseLabConfig('name: web\nssh: { user: ops }\nkubernetes: { dnsDomain: example.internal }\n', NEUTRAL_HOST, '/state');
  if (!r.ok) throw new Error('fixture config invalid');
  return r.config;
})();

async function makeSecrets(dir: string): Promise<SeedSecrets> {
  const user = await ensureSshKey(dir, 'user');
  const host = await ensureSshKey(dir, 'host', 'host_key');
  const ca = await ensureLabCa(dir, 'web');
  const tls = await issueServerCertificate(ca, dir, 'leaf', { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  return { sshPublicKey: user.publicKey, hostKey: { privateKey: await readFile(host.privateKeyPath, 'utf8'), publicKey: host.publicKey }, caCert: ca.certPem, tlsCert: tls.certPem, tlsKey: tls.keyPem };
}

const needs = missingCommand('ssh-keygen', 'openssl');

testUnless(needs, 'user-data carries the user, pinned host key, no swap and the lab CA; modules, sysctls and containerd config are baked, not seeded', async (t) => {
  await withTempDir(async (dir) => {
    const secrets = await makeSecrets(dir);
    const seed = renderSeedFiles(config, secrets);
    const { cc, files: written, archived } = readSeedUserData(seed['user-data']);
    t.is(cc.hostname, 'web');
    t.is(cc.fqdn, 'web.example.internal');
    for (const baked of ['locale', 'timezone', 'ssh_pwauth']) t.false(baked in cc, `${baked} is baked into the image, not seeded`);
    t.true(cc.manage_etc_hosts);
    t.deepEqual(cc.ssh_genkeytypes, ['ed25519']);
    t.is(cc.ssh_keys.ed25519_public, secrets.hostKey.publicKey);
    t.is(cc.users[0].name, 'ops');
    t.deepEqual(cc.users[0].ssh_authorized_keys, [secrets.sshPublicKey]);
    t.deepEqual(cc.swap, { size: 0 });
    for (const baked of ['/etc/modules-load.d/labsmith-kubernetes.conf', '/etc/sysctl.d/90-labsmith-kubernetes.conf', '/etc/containerd/config.toml']) t.false(baked in written, `${baked} is in the image`);
    // The trust store changes in write_files (before any service starts); the placeholder's files come in the archive part.
    t.false(archived.has('/etc/ssl/certs/ca-certificates.crt'));
    t.true(archived.has('/etc/labsmith/tls/placeholder.key') && written['/etc/labsmith/tls/placeholder.key']!.permissions === '0600');
    const bundle = cc.write_files.find((f: { path: string }) => f.path === '/etc/ssl/certs/ca-certificates.crt');
    t.is(bundle?.content, secrets.caCert);
    t.true(bundle?.append, 'appended to the bundle, not replacing it');
    const meta = parse(seed['meta-data']);
    t.regex(meta['instance-id'], /^web-[0-9a-f]{12}$/);
    t.is(meta['local-hostname'], 'web');
  });
});

const noCloudInit = missingCommand('cloud-init');
testUnless(noCloudInit ?? needs, 'rendered user-data passes the real `cloud-init schema`', async (t) => {
  await withTempDir(async (dir) => {
    const seed = renderSeedFiles(config, await makeSecrets(dir));
    await writeFile(join(dir, 'user-data'), readSeedUserData(seed['user-data']).cloudConfigText);
    const r = await run('cloud-init', ['schema', '--config-file', join(dir, 'user-data')], { allowFailure: true });
    t.is(r.exitCode, 0, r.stdout + r.stderr);
    t.regex(r.stdout, /Valid cloud-config/);
  });
});

testUnless(noCloudInit, '`cloud-init schema` does reject a broken config (the check above can fail)', async (t) => {
  await withTempDir(async (dir) => {
    await writeFile(join(dir, 'bad'), '#cloud-config\nusers: 42\nssh_genkeytypes: rsa\n');
    const r = await run('cloud-init', ['schema', '--config-file', join(dir, 'bad')], { allowFailure: true });
    t.not(r.exitCode, 0);
  });
});

test('containerd config parses as TOML: systemd cgroups, /opt/cni/bin, runc, and the pause image it is given', (t) => {
  const config = parseToml(renderContainerdConfig({ kubernetesVersion: '1.37', pauseImage: 'registry.k8s.io/pause:3.10.2' })) as any;
  t.is(config.version, 2);
  const cri = config.plugins['io.containerd.grpc.v1.cri'];
  t.is(cri.sandbox_image, 'registry.k8s.io/pause:3.10.2', "kubeadm's pause, from the lock");
  t.is(cri.containerd.default_runtime_name, 'runc');
  t.is(cri.containerd.runtimes.runc.runtime_type, 'io.containerd.runc.v2');
  t.true(cri.containerd.runtimes.runc.options.SystemdCgroup);
  t.is(cri.cni.bin_dir, '/opt/cni/bin');
  // Without a lock (an OS-only image) the table for the minor is the fallback.
  t.is((parseToml(renderContainerdConfig({ kubernetesVersion: '1.37' })) as any).plugins['io.containerd.grpc.v1.cri'].sandbox_image, 'registry.k8s.io/pause:3.10.1');
});

testUnless(missingCommand('containerd'), 'containerd itself loads the config and keeps the keys', async (t) => {
  await withTempDir(async (dir) => {
    await writeFile(join(dir, 'config.toml'), renderContainerdConfig({ kubernetesVersion: '1.37', pauseImage: 'registry.k8s.io/pause:3.10.2' }));
    const dump = await run('containerd', ['--config', join(dir, 'config.toml'), 'config', 'dump']);
    t.regex(dump.stdout, /SystemdCgroup = true/);
    t.regex(dump.stdout, /sandbox_image = "registry\.k8s\.io\/pause:3\.10\.2"/);
    t.regex(dump.stdout, /bin_dir = "\/opt\/cni\/bin"/);
  });
});
test('network-config matches the virtio NIC by name and uses DHCP', (t) => {
  const seed = renderSeedFiles(config, { sshPublicKey: 'ssh-ed25519 AAAA x', hostKey: { privateKey: 'k', publicKey: 'ssh-ed25519 BBBB h' }, caCert: 'c', tlsCert: 'c', tlsKey: 'k' });
  t.deepEqual(parse(seed['network-config']), { version: 2, ethernets: { primary: { match: { name: 'en*' }, dhcp4: true, dhcp6: false } } });
});

const noXorriso = missingCommand('xorriso');
testUnless(noXorriso ?? needs, 'the seed ISO is labelled cidata, holds the three files and is owner-only', async (t) => {
  await withTempDir(async (dir) => {
    const seed = renderSeedFiles(config, await makeSecrets(dir));
    await writeSeedFiles(join(dir, 'seed'), seed);
    const iso = join(dir, 'seed.iso');
    await writeSeedIso(join(dir, 'seed'), iso);
    t.is((await stat(iso)).mode & 0o777, 0o600);
    t.is((await stat(join(dir, 'seed', 'user-data'))).mode & 0o777, 0o600);
    const info = await run('xorriso', ['-indev', iso, '-pvd_info'], { allowFailure: true });
    t.regex(info.stdout + info.stderr, /Volume Id\s*:\s*cidata/);
    const ls = await run('xorriso', ['-indev', iso, '-ls', '/'], { allowFailure: true });
    for (const f of ['user-data', 'meta-data', 'network-config']) t.regex(ls.stdout, new RegExp(`'${f}'`));
    const extracted = join(dir, 'ud');
    await run('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', '/user-data', extracted]);
    t.is(await readFile(extracted, 'utf8'), seed['user-data']);
  });
});

testUnless(noCloudInit ?? needs, "cloud-init's own user-data processing sees the cloud-config and the archive part, whose script unpacks every file with its mode and the time it was written", async (t) => {
  await withTempDir(async (dir) => {
    const seed = renderSeedFiles(config, await makeSecrets(dir));
    const { files, archived } = readSeedUserData(seed['user-data']);
    await writeFile(join(dir, 'user-data'), seed['user-data']);
    // cloud-init's interpreter (its shebang) and its UserDataProcessor, as the guest's init stage runs it.
    const cloudInit = (await run('sh', ['-c', 'command -v cloud-init'])).stdout.trim();
    const python = (await readFile(cloudInit, 'utf8')).split('\n')[0]!.replace(/^#!\s*/, '').split(' ')[0]!;
    const script = [
      'import sys, os',
      'from cloudinit import user_data, helpers',
      "p = helpers.Paths({'cloud_dir': sys.argv[2] + '/cloud', 'run_dir': sys.argv[2] + '/run'})",
      'msg = user_data.UserDataProcessor(p).process(open(sys.argv[1]).read())',
      'for part in msg.walk():',
      "    if part.get_content_maintype() == 'multipart': continue",
      "    print(part.get_content_type(), part.get_filename())",
      "    if part.get_content_type() == 'text/x-shellscript': open(sys.argv[2] + '/part.sh', 'wb').write(part.get_payload(decode=True))",
    ].join('\n');
    const r = await run(python, ['-c', script, join(dir, 'user-data'), dir]);
    t.deepEqual(r.stdout.trim().split('\n'), ['text/cloud-config cloud-config.yaml', 'text/x-shellscript 00-labsmith-files.sh'], 'the part sorts before runcmd in the scripts directory');
    t.true('00-labsmith-files.sh' < 'runcmd');
    const root = join(dir, 'root');
    await run('mkdir', [root]);
    await run('sh', [join(dir, 'part.sh'), root]);
    t.true(archived.size > 0);
    for (const path of archived) {
      t.is(await readFile(join(root, path), 'utf8'), files[path]!.content, path);
      const unpacked = await stat(join(root, path));
      t.is((unpacked.mode & 0o7777).toString(8).padStart(4, '0'), files[path]!.permissions, `${path} mode`);
      // As write_files would: the time it was written, not the archive's 1970.
      t.true(Date.now() - unpacked.mtimeMs < 10 * 60_000, `${path} mtime ${unpacked.mtime.toISOString()}`);
    }
  });
});
