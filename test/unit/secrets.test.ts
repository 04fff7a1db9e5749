import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../core/exec.ts';
import { ensureLabCa, ensureSshKey, issueServerCertificate } from '../../lab/secrets.ts';
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
