/**
 * The server profile: lab.yaml's server: section with field-path errors, the seed rendered by
 * the lab's renderers (checked by the real `cloud-init schema`), the network-config read by
 * cloud-init's own v2 parser (`cloud-init devel net-convert` to networkd), the ISO, and the
 * Let's Encrypt objects and stable local-path volumes validated against the real schemas.
 */
import test from 'ava';
import { Ajv } from 'ajv';
import { existsSync, readFileSync } from 'node:fs';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { StorageClass } from 'kubernetes-models/storage.k8s.io/v1';
import { run } from '../../core/exec.ts';
import { parseLabConfig } from '../../config/load.ts';
import type { LabConfig } from '../../config/lab-config.ts';
import { renderServerNetworkConfig } from '../../cloud-init/network-config.ts';
import { renderServerClusterSeed, renderServerTlsObjects } from '../../cloud-init/server-seed.ts';
import { LAB_CA_GUEST_PATH, RSYSLOG_FORWARDING_PATH } from '../../cloud-init/user-data.ts';
import { parseAuthorizedKeys, writeServerSeed } from '../../lab/server/write-seed.ts';
import { missingCommand, NEUTRAL_HOST, readSeedUserData, testUnless, withTempDir } from '../helpers.ts';

const SERVER_YAML = (keyFiles: string) => `name: mx
server:
  hostname: mx1
  domain: example.org
  network:
    match: { macAddress: "52:54:00:12:34:56" }
    ipv4: { address: 203.0.113.10/24, gateway: 203.0.113.1 }
    ipv6: { address: "2001:db8::10/64", gateway: "fe80::1" }
    dns: { servers: [203.0.113.53, "2001:db8::53"], search: [example.org] }
  authorizedKeyFiles: ${keyFiles}
  letsEncrypt: { email: ops@example.org, solver: { type: dns01-rfc2136, nameserver: "203.0.113.53:53", tsigKeyName: acme.example.org., tsigSecretName: acme-tsig } }
  logTarget: udp://203.0.113.20:514
`;

const parseConfig = (text: string) => parseLabConfig(text, NEUTRAL_HOST, '/state');
const problemsOf = (text: string) => {
  const r = parseConfig(text);
  return r.ok ? [] : r.problems.map((p) => `${p.path}: ${p.message}`);
};
function configOf(text: string): LabConfig {
  const r = parseConfig(text);
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.config;
}

test('a server: section parses, with defaults for what it leaves out', (t) => {
  const c = configOf(SERVER_YAML('[/k/a.pub]'));
  t.is(c.server!.hostname, 'mx1');
  t.is(c.server!.letsEncrypt!.server, 'production');
  t.deepEqual(c.server!.network.dns.search, ['example.org']);
  t.is(configOf('name: plain\n').server, undefined);
});

test('bad server input: every problem at once, each with its field path', (t) => {
  const bad = `server:
  domain: example.org
  network:
    match: {}
    ipv4: { address: 203.0.113.10 }
    dns: { servers: [] }
`;
  t.deepEqual(problemsOf(bad), [
    "server.authorizedKeyFiles: is required: list files with your own SSH public keys (e.g. [~/.ssh/id_ed25519.pub]); the lab's generated key is not used on the server",
    "server.network.match.macAddress: is required: the server's NIC is found by its MAC address (`ip link` on the machine), since interface names change with the hardware",
    'server.network.dns.servers: is required with a static address: list the resolvers, e.g. [192.0.2.53]',
    'server.network.ipv4.address: 203.0.113.10 has no prefix length: write it as 203.0.113.10/24 (or the prefix your network uses)',
  ]);
  const noGateway = SERVER_YAML('[/k]').replace('ipv4: { address: 203.0.113.10/24, gateway: 203.0.113.1 }', 'ipv4: { address: 203.0.113.10/24 }');
  t.deepEqual(problemsOf(noGateway), ['server.network.ipv4.gateway: is required: the default gateway of the server network']);
  const inPods = SERVER_YAML('[/k]').replace('203.0.113.10/24, gateway: 203.0.113.1', '10.42.7.10/24, gateway: 10.42.7.1');
  t.deepEqual(problemsOf(inPods), ["server.network.ipv4.address: 10.42.7.10 is inside kubernetes.podSubnet 10.42.0.0/16: pods and Services would shadow the server's own address; change one of them"]);
  const inServices = SERVER_YAML('[/k]').replace('203.0.113.10/24, gateway: 203.0.113.1', '10.96.0.20/16, gateway: 10.96.0.1');
  t.regex(problemsOf(inServices).join('\n'), /^server\.network\.ipv4\.address: 10\.96\.0\.20 is inside kubernetes\.serviceSubnet 10\.96\.0\.0\/12/);
  const farGateway = SERVER_YAML('[/k]').replace('gateway: 203.0.113.1', 'gateway: 198.51.100.1');
  t.deepEqual(problemsOf(farGateway), ["server.network.ipv4.gateway: 198.51.100.1 is not in 203.0.113.0/24: the gateway must be on the server's own network"]);
  const v6 = SERVER_YAML('[/k]').replace('"2001:db8::10/64"', '"2001:db8::10"');
  t.deepEqual(problemsOf(v6), ['server.network.ipv6.address: 2001:db8::10 has no prefix length: write it as 2001:db8::10/64 (or the prefix your network uses)']);
  t.deepEqual(problemsOf(SERVER_YAML('[/k]').replace('match: { macAddress: "52:54:00:12:34:56" }', 'match: { name: eth0 }')), ['server.network.match: unknown field name']);
});

const noNetConvert = missingCommand('cloud-init');
testUnless(noNetConvert, "network-config v2: cloud-init's own parser renders networkd matched by MAC, static v4/v6, gateways, DNS", async (t) => {
  await withTempDir(async (dir) => {
    const c = configOf(SERVER_YAML('[/k]'));
    await writeFile(join(dir, 'network-config'), renderServerNetworkConfig(c.server!.network));
    await run('cloud-init', ['devel', 'net-convert', '-p', join(dir, 'network-config'), '-k', 'yaml', '-D', 'debian', '-O', 'networkd', '-d', join(dir, 'out'), '-m', 'enp0s3,52:54:00:12:34:56']);
    const netDir = join(dir, 'out', 'etc', 'systemd', 'network');
    const files = await readdir(netDir);
    t.deepEqual(files, ['10-cloud-init-uplink.network']);
    const unit = await readFile(join(netDir, files[0]!), 'utf8');
    t.regex(unit, /\[Match\]\nMACAddress=52:54:00:12:34:56\nName=uplink/);
    for (const line of ['Address=203.0.113.10/24', 'Address=2001:db8::10/64', 'Gateway=203.0.113.1', 'Gateway=fe80::1', 'DHCP=no', 'Domains=example.org']) t.true(unit.includes(line), line);
    t.regex(unit, /DNS=203\.0\.113\.53 2001:db8::53/);
    // Default routes, not the deprecated gateway4/gateway6 (a deprecation makes `cloud-init status` report a recoverable error).
    const routes = unit.split('[Route]').slice(1).map((r) => r.trim().split(/\n+/).sort().join(' '));
    t.true(routes.includes('Destination=0.0.0.0/0 Gateway=203.0.113.1'), routes.join('; '));
    // The IPv6 one is a [Route] via fe80::1 (this host's cloud-init 22.4 writes its ::/0 as ::/64; the image's 25.1 writes ::/0).
    t.true(routes.some((r) => r.endsWith('Gateway=fe80::1')), routes.join('; '));
    const rendered = parse(renderServerNetworkConfig(c.server!.network));
    t.deepEqual(rendered.ethernets.uplink.routes, [{ to: '0.0.0.0/0', via: '203.0.113.1' }, { to: '::/0', via: 'fe80::1' }]);
    t.false(/gateway[46]/.test(renderServerNetworkConfig(c.server!.network)), 'no gateway4/gateway6');
    // The parser can fail: an address that is not one is refused.
    await writeFile(join(dir, 'bad'), renderServerNetworkConfig({ ...c.server!.network, ipv4: { address: 'not-an-address/24', gateway: '203.0.113.1' } }));
    const bad = await run('cloud-init', ['devel', 'net-convert', '-p', join(dir, 'bad'), '-k', 'yaml', '-D', 'debian', '-O', 'networkd', '-d', join(dir, 'out2')], { allowFailure: true });
    t.not(bad.exitCode, 0);
  });
});

test('authorized_keys lines are taken from the files, comments and junk left out', (t) => {
  t.deepEqual(parseAuthorizedKeys('# mine\nssh-ed25519 AAAA me@x\n\nnot a key\nfrom="10.0.0.1" ssh-rsa BBBB y\n'), ['ssh-ed25519 AAAA me@x', 'from="10.0.0.1" ssh-rsa BBBB y']);
});

const needs = missingCommand('ssh-keygen', 'openssl', 'xorriso', 'cloud-init');
testUnless(needs, "server:seed writes files and a cidata ISO: the user's keys, production names, its syslog target, no lab CA; `cloud-init schema` accepts it", async (t) => {
  await withTempDir(async (dir) => {
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'alice@laptop', '-f', join(dir, 'alice')]);
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'bob@desk', '-f', join(dir, 'bob')]);
    const config = configOf(SERVER_YAML(`[${join(dir, 'alice.pub')}, ${join(dir, 'bob.pub')}]`));
    const out = join(dir, 'seed');
    const seed = await writeServerSeed(config, out, { configFile: 'lab.yaml' });
    const { cc, files, cloudConfigText } = readSeedUserData(seed.files['user-data']);
    t.is(cc.hostname, 'mx1');
    t.is(cc.fqdn, 'mx1.example.org');
    t.deepEqual(cc.users[0].ssh_authorized_keys, [(await readFile(join(dir, 'alice.pub'), 'utf8')).trim(), (await readFile(join(dir, 'bob.pub'), 'utf8')).trim()]);
    t.false(LAB_CA_GUEST_PATH in files, 'the lab CA is not trusted on the server');
    t.regex(files[RSYSLOG_FORWARDING_PATH]!.content, /203\.0\.113\.20/);
    t.false(cc.runcmd.some((c: string[]) => c[0] === 'update-ca-certificates'));
    t.is(parse(seed.files['meta-data'])['local-hostname'], 'mx1');
    t.is(parse(seed.files['network-config']).ethernets.uplink.match.macaddress, '52:54:00:12:34:56');

    await writeFile(join(dir, 'cloud-config'), cloudConfigText);
    const schema = await run('cloud-init', ['schema', '--config-file', join(dir, 'cloud-config')], { allowFailure: true });
    t.is(schema.exitCode, 0, schema.stdout + schema.stderr);
    const info = await run('xorriso', ['-indev', seed.iso, '-pvd_info'], { allowFailure: true });
    t.regex(info.stdout + info.stderr, /Volume Id\s*:\s*cidata/);
    const ls = await run('xorriso', ['-indev', seed.iso, '-ls', '/'], { allowFailure: true });
    for (const f of ['user-data', 'meta-data', 'network-config']) t.regex(ls.stdout, new RegExp(`'${f}'`));
    t.is((await stat(out)).mode & 0o777, 0o700);
    for (const f of ['seed.iso', 'ssh_host_ed25519_key', 'known_hosts', 'placeholder.key', 'nocloud/user-data']) t.is((await stat(join(out, f))).mode & 0o077, 0, f);
    t.regex(await readFile(seed.knownHosts, 'utf8'), /^mx1\.example\.org,mx1,203\.0\.113\.10,2001:db8::10 ssh-ed25519 /);
  });
});

testUnless(needs, 'server:seed refuses key files that are missing or hold no key, naming the field', async (t) => {
  await withTempDir(async (dir) => {
    await writeFile(join(dir, 'private'), '-----BEGIN OPENSSH PRIVATE KEY-----\n');
    const config = configOf(SERVER_YAML(`[${join(dir, 'nope.pub')}, ${join(dir, 'private')}]`));
    const error = await t.throwsAsync(writeServerSeed(config, join(dir, 'out'), { configFile: 'lab.yaml' }));
    t.regex(error!.message, /server\.authorizedKeyFiles\.0: cannot read .*nope\.pub \(ENOENT\)/);
    t.regex(error!.message, /server\.authorizedKeyFiles\.1: .*has no SSH public key line/);
  });
});

const UP = [resolve('..', 'shared', 'upstream'), resolve('..', '..', 'shared', 'upstream')].find((d) => existsSync(d));
testUnless(UP ? undefined : 'the shared upstream manifests are not found', "server TLS: Let's Encrypt issuers and certificate pass cert-manager's CRDs; local-path keeps stable paths and Retain", (t) => {
  const crd = (file: string) => {
    const doc = parse(readFileSync(join(UP!, 'cert-manager-v1.21.1-crds', file), 'utf8'));
    const validate = new Ajv({ strict: false, allErrors: true, validateFormats: false }).compile(doc.spec.versions.find((v: { name: string }) => v.name === 'v1').schema.openAPIV3Schema);
    return (o: unknown) => (validate(o) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`));
  };
  const issuer = crd('cert-manager.io_clusterissuers.yaml');
  const certificate = crd('cert-manager.io_certificates.yaml');
  const dns = configOf(SERVER_YAML('[/k]')).server!;
  const http = configOf(SERVER_YAML('[/k]').replace(/solver: \{[^}]*\}/, 'solver: { type: http01 }, names: [example.org, mail.example.org]')).server!;
  for (const [le, names] of [[dns.letsEncrypt!, ['*.example.org', 'example.org']], [http.letsEncrypt!, ['example.org', 'mail.example.org']]] as const) {
    const objects = renderServerTlsObjects('example.org', le);
    const issuers = objects.filter((o) => o.kind === 'ClusterIssuer');
    t.deepEqual(issuers.map((o) => o.metadata.name), ['letsencrypt-production', 'letsencrypt-staging']);
    for (const o of issuers) t.deepEqual(issuer(o), []);
    const cert = objects.find((o) => o.kind === 'Certificate')!;
    t.deepEqual(certificate(cert), []);
    t.deepEqual((cert.spec as { dnsNames: string[] }).dnsNames, [...names]);
    t.is((cert.spec as { issuerRef: { name: string } }).issuerRef.name, 'letsencrypt-production');
  }
  const upstream = {
    calico: readFileSync(join(UP!, 'calico-v3.32.1.yaml'), 'utf8'),
    'cert-manager': 'apiVersion: v1\nkind: Namespace\nmetadata: { name: cert-manager }\n',
    'local-path': readFileSync(join(UP!, 'local-path-storage-v0.0.36.yaml'), 'utf8'),
  };
  const seed = renderServerClusterSeed(configOf(SERVER_YAML('[/k]')), { kubernetesVersion: 'v1.37.0', lockedImages: ['registry.k8s.io/pause:3.10.1'], upstream, certSANs: ['mx1.example.org'] });
  t.deepEqual(seed.addons.map((a) => a.file), ['10-calico.yaml', '20-cert-manager.yaml', '30-server-tls.yaml', '40-local-path.yaml', '50-traefik.yaml', '60-network-policies.yaml']);
  const sc = parseAllDocuments(seed.addons.find((a) => a.file === '40-local-path.yaml')!.text).map((d) => d.toJSON()).find((d) => d.kind === 'StorageClass');
  t.is(sc.parameters.pathPattern, '{{ .PVC.Namespace }}/{{ .PVC.Name }}');
  t.is(sc.reclaimPolicy, 'Retain');
  t.notThrows(() => new StorageClass(sc).validate());
  t.regex(seed.kubeadmConfig, /advertiseAddress: 203\.0\.113\.10/);
  t.regex(seed.kubeadmConfig, /name: mx1\n/);
});
