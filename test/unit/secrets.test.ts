import test from 'ava';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../core/exec.ts';
import { ensureLabCa, ensureSshKey, issueServerCertificate, LAB_CA_DAYS, labCaScope, placeholderCertificateSans, renderNameConstraints } from '../../lab/secrets.ts';
import { fillDefaults } from '../../config/defaults.ts';
import { missingCommand, testUnless, withTempDir } from '../helpers.ts';

const needs = missingCommand('ssh-keygen', 'openssl');

testUnless(needs, 'per-lab SSH key: ed25519, private part 0600, reused on a second call', async (t) => {
  await withTempDir(async (dir) => {
    const a = await ensureSshKey(dir, 'labsmith-x');
    t.regex(a.publicKey, /^ssh-ed25519 \S+ labsmith-x$/);
    t.is((await stat(a.privateKeyPath)).mode & 0o777, 0o600);
    const b = await ensureSshKey(dir, 'labsmith-x');
    t.is(b.publicKey, a.publicKey);
  });
});

testUnless(needs, 'lab CA key is 0600; issued certificate verifies against it for its SANs with serverAuth', async (t) => {
  await withTempDir(async (dir) => {
    const ca = await ensureLabCa(dir, 'x');
    t.is((await stat(ca.keyPath)).mode & 0o777, 0o600);
    await issueServerCertificate(ca, dir, 'leaf', { dnsNames: ['app.lab.test'], ipAddresses: ['127.0.0.1'] });
    t.is((await stat(join(dir, 'leaf.key'))).mode & 0o777, 0o600);
    const verify = await run('openssl', ['verify', '-CAfile', ca.certPath, '-purpose', 'sslserver', join(dir, 'leaf.crt')]);
    t.regex(verify.stdout, /OK/);
    const text = (await run('openssl', ['x509', '-in', join(dir, 'leaf.crt'), '-noout', '-text'])).stdout;
    t.regex(text, /DNS:app.lab.test, IP Address:127.0.0.1/);
    t.regex(text, /TLS Web Server Authentication/);
    t.regex(text, /CA:FALSE/);
    t.regex(await readFile(ca.certPath, 'utf8'), /BEGIN CERTIFICATE/);
    // A certificate from another CA must not verify against this one.
    const other = await ensureLabCa(join(dir), 'other', { key: 'o.key', cert: 'o.crt' });
    const wrong = await run('openssl', ['verify', '-CAfile', other.certPath, join(dir, 'leaf.crt')], { allowFailure: true });
    t.not(wrong.exitCode, 0);
  });
});

test('the lab CA name constraints: the lab domain (subdomains and apex), the names and addresses the lab serves; bad values refused', (t) => {
  const config = fillDefaults({ name: 'web', network: { hostAddress: '192.168.1.20' } }, '/state');
  const scope = labCaScope(config, 'localhost');
  t.deepEqual(scope, { labName: 'web', ingressDomain: 'web.test', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '192.168.1.20'] });
  t.is(renderNameConstraints(scope), 'critical,permitted;DNS:.web.test,permitted;DNS:web.test,permitted;DNS:localhost,permitted;IP:127.0.0.1/255.255.255.255,permitted;IP:192.168.1.20/255.255.255.255');
  t.deepEqual(labCaScope(fillDefaults({ name: 'web', network: { hostAddress: '0.0.0.0' } }, '/state'), 'localhost').ipAddresses, ['127.0.0.1'], 'a wildcard listen address is no address to sign');
  t.regex(renderNameConstraints({ ...scope, ipAddresses: ['::1'] }), /permitted;IP:::1\/ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff$/);
  t.throws(() => renderNameConstraints({ ...scope, dnsNames: ['a,b'] }), { message: /cannot hold commas/ });
  t.throws(() => renderNameConstraints({ ...scope, ipAddresses: ['localhost'] }), { message: /not an IP address/ });
});

testUnless(needs, 'the lab CA signs only for the lab: the placeholder and wildcard certificates verify, another domain or address does not; it lives LAB_CA_DAYS', async (t) => {
  await withTempDir(async (dir) => {
    const config = fillDefaults({ name: 'web', network: { hostAddress: '192.168.1.20' } }, '/state');
    const ca = await ensureLabCa(dir, labCaScope(config, 'localhost'));
    const text = (await run('openssl', ['x509', '-in', ca.certPath, '-noout', '-text'])).stdout;
    t.regex(text, /X509v3 Name Constraints: critical/);
    t.regex(text, /Permitted:\s+DNS:\.web\.test\s+DNS:web\.test\s+DNS:localhost\s+IP:127\.0\.0\.1\/255\.255\.255\.255\s+IP:192\.168\.1\.20\/255\.255\.255\.255/);
    const dates = (await run('openssl', ['x509', '-in', ca.certPath, '-noout', '-startdate', '-enddate'])).stdout;
    const [start, end] = [/notBefore=(.*)/, /notAfter=(.*)/].map((r) => Date.parse(r.exec(dates)![1]!));
    t.is(Math.round((end! - start!) / 86_400_000), LAB_CA_DAYS);

    const verify = async (name: string, sans: { dnsNames: string[]; ipAddresses: string[] }) => {
      await issueServerCertificate(ca, dir, name, sans);
      return run('openssl', ['verify', '-CAfile', ca.certPath, '-purpose', 'sslserver', join(dir, `${name}.crt`)], { allowFailure: true });
    };
    // What lab:up issues for the placeholder, and what cert-manager issues for the wildcard Certificate.
    for (const [name, sans] of [
      ['placeholder', placeholderCertificateSans(config, 'localhost')],
      ['wildcard', { dnsNames: ['*.web.test', 'web.test'], ipAddresses: [] }],
      ['app', { dnsNames: ['echo-1a2b3c.web.test'], ipAddresses: [] }],
    ] as const) {
      const r = await verify(name, { dnsNames: [...sans.dnsNames], ipAddresses: [...sans.ipAddresses] });
      t.is(r.exitCode, 0, `${name}: ${r.stdout}${r.stderr}`);
    }
    for (const [name, sans] of [
      ['other-domain', { dnsNames: ['www.example.com'], ipAddresses: [] }],
      ['suffix-trick', { dnsNames: ['evilweb.test'], ipAddresses: [] }],
      ['other-address', { dnsNames: ['a.web.test'], ipAddresses: ['10.1.2.3'] }],
    ] as const) {
      const r = await verify(name, { dnsNames: [...sans.dnsNames], ipAddresses: [...sans.ipAddresses] });
      t.not(r.exitCode, 0, `${name} must not verify`);
      t.regex(r.stdout + r.stderr, /permitted subtree violation/, name);
    }
  });
});
