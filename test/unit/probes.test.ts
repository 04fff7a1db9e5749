/**
 * The forward checks against real servers on loopback: a placeholder-like server answering
 * 404 and impostors that must fail the same checks (wrong server, wrong CA, wrong name, expired).
 */
import test from 'ava';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { run } from '../../core/exec.ts';
import { PLACEHOLDER_SERVER_HEADER } from '../../cloud-init/placeholder-ingress.ts';
import { runCheck } from '../../lab/acceptance/check.ts';
import type { AcceptanceContext } from '../../lab/acceptance/context.ts';
import { PLACEHOLDER_CHECKS } from '../../lab/acceptance/checks/placeholder.ts';
import { httpsGet } from '../../lab/acceptance/probes.ts';
import { ensureLabCa, issueServerCertificate } from '../../lab/secrets.ts';
import { missingCommand, testUnless, withTempDir } from '../helpers.ts';

const forwardHttp = PLACEHOLDER_CHECKS.find((c) => c.id === 'forward-http')!;
const forwardHttps = PLACEHOLDER_CHECKS.find((c) => c.id === 'forward-https')!;
const fast = <T>(c: T & { timeoutMs: number; retry: { attempts: number; intervalMs: number } }) => ({ ...c, timeoutMs: 5000, retry: { attempts: 1, intervalMs: 0 } });

function answer(status: number, server: string): http.RequestListener {
  return (_req, res) => {
    res.writeHead(status, { Server: server, 'Content-Type': 'text/plain' });
    res.end('body\n');
  };
}

async function listen(server: http.Server | https.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

function ctx(ports: Record<string, number>, caCert = '', tlsName = 'localhost'): AcceptanceContext {
  return { ssh: { stateDir: '/nonexistent', user: 'u', host: '127.0.0.1', port: 1 }, address: '127.0.0.1', ports, caCert, tlsName, cluster: { missing: 'none in this test' }, dnsDomain: 'cluster.local', ingressDomain: 'lab.test' };
}

test('forward-http passes on the placeholder 404 and fails on other answers', async (t) => {
  const cases: [number, string, boolean][] = [
    [404, `${PLACEHOLDER_SERVER_HEADER}/1.0`, true],
    [200, `${PLACEHOLDER_SERVER_HEADER}/1.0`, false],
    [404, 'nginx', false],
  ];
  for (const [status, server, expected] of cases) {
    const srv = http.createServer(answer(status, server));
    const port = await listen(srv);
    const r = await runCheck(fast(forwardHttp), ctx({ http: port }));
    srv.close();
    t.is(r.ok, expected, `${status} ${server}: ${r.detail}`);
  }
});

test('forward-http fails when nothing listens', async (t) => {
  const srv = http.createServer();
  const port = await listen(srv);
  await new Promise((resolve) => srv.close(resolve));
  const r = await runCheck(fast(forwardHttp), ctx({ http: port }));
  t.false(r.ok);
  t.regex(r.detail, /ECONNREFUSED/);
});

test('forward checks skip with a reason when the forward is not configured', async (t) => {
  const r = await runCheck(forwardHttp, ctx({}));
  t.is(r.skipped, 'no http forward configured');
});

const needs = missingCommand('openssl');

testUnless(needs, 'forward-https verifies chain and name against the lab CA; impostors fail', async (t) => {
  await withTempDir(async (dir) => {
    const ca = await ensureLabCa(dir, 'lab');
    const other = await ensureLabCa(dir, 'other', { key: 'other.key', cert: 'other.crt' });
    const good = await issueServerCertificate(ca, dir, 'good', { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    const wrongName = await issueServerCertificate(ca, dir, 'wrongname', { dnsNames: ['elsewhere.test'], ipAddresses: [] });
    const wrongCa = await issueServerCertificate(other, dir, 'wrongca', { dnsNames: ['localhost'], ipAddresses: [] });
    // An expired certificate: valid until yesterday (OpenSSL 3.0 takes a negative -days).
    await run('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'old.key'), '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost', '-out', join(dir, 'old.csr')]);
    await run('openssl', ['x509', '-req', '-in', join(dir, 'old.csr'), '-CA', ca.certPath, '-CAkey', ca.keyPath, '-set_serial', '7', '-days', '-1', '-copy_extensions', 'copy', '-out', join(dir, 'old.crt')]);
    const expired = { certPem: await readFile(join(dir, 'old.crt'), 'utf8'), keyPem: await readFile(join(dir, 'old.key'), 'utf8') };

    const cases: [string, { certPem: string; keyPem: string }, boolean, RegExp][] = [
      ['valid', good, true, /HTTP 404/],
      ['wrong SAN', wrongName, false, /Hostname\/IP does not match|altnames/i],
      ['wrong CA', wrongCa, false, /unable to (get|verify)|self.signed|certificate/i],
      ['expired', expired, false, /expired|not yet valid/i],
    ];
    for (const [what, cert, expected, detail] of cases) {
      const srv = https.createServer({ cert: cert.certPem, key: cert.keyPem }, answer(404, PLACEHOLDER_SERVER_HEADER));
      const port = await listen(srv);
      const r = await runCheck(fast(forwardHttps), ctx({ https: port }, ca.certPem));
      srv.close();
      t.is(r.ok, expected, `${what}: ${r.detail}`);
      t.regex(r.detail, detail, what);
    }
  });
});

testUnless(needs, 'an unknown SNI gets the default certificate, which must still verify for the asked name', async (t) => {
  await withTempDir(async (dir) => {
    const ca = await ensureLabCa(dir, 'lab');
    const fallback = await issueServerCertificate(ca, dir, 'default', { dnsNames: ['*.lab.test'], ipAddresses: [] });
    const named = await issueServerCertificate(ca, dir, 'named', { dnsNames: ['app.lab.test'], ipAddresses: [] });
    const tls = await import('node:tls');
    const srv = https.createServer({
      cert: fallback.certPem,
      key: fallback.keyPem,
      SNICallback: (name, cb) => cb(null, name === 'app.lab.test' ? tls.createSecureContext({ cert: named.certPem, key: named.keyPem }) : undefined),
    }, answer(404, 'x'));
    const port = await listen(srv);
    const app = await httpsGet({ address: '127.0.0.1', port, host: 'app.lab.test', ca: ca.certPem });
    t.is(app.peer?.subject?.CN, 'app.lab.test');
    const other = await httpsGet({ address: '127.0.0.1', port, host: 'other.lab.test', ca: ca.certPem });
    t.is(other.peer?.subject?.CN, '*.lab.test');
    await t.throwsAsync(httpsGet({ address: '127.0.0.1', port, host: 'other.example', ca: ca.certPem }), { message: /Hostname\/IP does not match/ });
    srv.close();
  });
});
