/**
 * lab.yaml `checks:` against real servers on loopback: exim (Debian's exim4-daemon-light, a
 * private config and spool, STARTTLS with a certificate from a test lab CA), dnsmasq (UDP and
 * TCP), Node's https with the lab CA's certificate, and a TCP banner server. Each check type
 * passes on the right answer and fails, saying what it saw, on a wrong one. Also: the DNS wire
 * codec, the reproduce commands run as printed, and qemu/nft rendering of UDP forwards.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import { run } from '../../core/exec.ts';
import { sleep } from '../../core/sleep.ts';
import { fillDefaults } from '../../config/defaults.ts';
import type { LabConfigInput } from '../../config/schema.ts';
import type { UserCheck } from '../../config/lab-config.ts';
import { runCheck, runCheckList } from '../../lab/acceptance/check.ts';
import { decodeDnsResponse, encodeDnsQuery, judgeDnsAnswer, userCheck } from '../../lab/acceptance/checks/user.ts';
import type { AcceptanceContext } from '../../lab/acceptance/context.ts';
import { parseTap, renderJsonReport, renderJunit } from '../../lab/acceptance/report.ts';
import { renderHostForwards } from '../../lab/drivers/qemu-args.ts';
import { runAcceptanceSuite, suiteChecks } from '../../lab/acceptance/suite.ts';
import { NFT } from '../../lab/forwarding/nft-apply.ts';
import { renderForwardRuleset } from '../../lab/forwarding/nft-rules.ts';
import { freePort } from '../../lab/ports.ts';
import { ensureLabCa, issueServerCertificate, type LabCa } from '../../lab/secrets.ts';
import { missingCommand, notRoot, pidsWithCommandLine, testUnless, withTempDir } from '../helpers.ts';

/** One attempt, a short budget: these servers answer at once or are wrong. */
function check(c: Record<string, unknown>): ReturnType<typeof userCheck> {
  const config = fillDefaults({ checks: [{ timeoutSeconds: 10, retries: 0, ...c }] } as LabConfigInput, '/state');
  return userCheck(config.checks[0]! as UserCheck);
}

function ctxFor(stateDir: string, caCert: string): AcceptanceContext {
  return { address: '127.0.0.1', ports: {}, caCert, tlsName: 'localhost', cluster: { missing: 'none in this test' }, dnsDomain: 'cluster.local', ingressDomain: 'lab.test', stateDir };
}

async function labCas(dir: string): Promise<{ ca: LabCa; impostor: LabCa }> {
  await mkdir(join(dir, 'impostor'), { recursive: true });
  return { ca: await ensureLabCa(dir, 'test'), impostor: await ensureLabCa(join(dir, 'impostor'), 'impostor') };
}

async function waitForPort(port: number, child: ChildProcess, log: () => string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`the server exited (${child.exitCode}): ${log()}`);
    const open = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(true));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(false)));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on ${port}: ${log()}`);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

// --- pure: the DNS wire codec ---

test('DNS query encoding (golden) and answer decoding with name compression', (t) => {
  t.is(encodeDnsQuery(0x1234, 'www.lab.test', 'MX').toString('hex'), '123401000001000000000000' + '03777777036c61620474657374' + '00' + '000f0001');
  // An answer to "lab.test NS" with two records, the second name compressed onto the first.
  const q = encodeDnsQuery(7, 'lab.test', 'NS');
  const header = Buffer.from(q.subarray(0, 12));
  header.writeUInt16BE(0x8180, 2);
  header.writeUInt16BE(2, 6);
  const rr = (rdata: Buffer) => {
    const fixed = Buffer.alloc(12);
    fixed.writeUInt16BE(0xc00c, 0);
    fixed.writeUInt16BE(2, 2);
    fixed.writeUInt16BE(1, 4);
    fixed.writeUInt32BE(60, 6);
    fixed.writeUInt16BE(rdata.length, 10);
    return Buffer.concat([fixed, rdata]);
  };
  const ns1 = Buffer.concat([Buffer.from([3]), Buffer.from('ns1'), Buffer.from([0xc0, 12])]);
  const ns2 = Buffer.concat([Buffer.from([3]), Buffer.from('ns2'), Buffer.from([0xc0, 12])]);
  const decoded = decodeDnsResponse(Buffer.concat([header, q.subarray(12), rr(ns1), rr(ns2)]));
  t.deepEqual(decoded, { id: 7, rcode: 'NOERROR', truncated: false, answers: [{ type: 'NS', data: 'ns1.lab.test' }, { type: 'NS', data: 'ns2.lab.test' }] });
  t.throws(() => decodeDnsResponse(Buffer.alloc(5)), { message: /too short/ });
  t.is(judgeDnsAnswer({ query: 'lab.test', qtype: 'NS', expect: ['ns2.lab.test.', 'NS1.lab.test'] }, decoded), undefined);
  t.is(judgeDnsAnswer({ query: 'lab.test', qtype: 'NS', expect: ['ns1.lab.test'] }, decoded), 'lab.test NS answered [ns1.lab.test, ns2.lab.test], expected [ns1.lab.test]');
  t.is(judgeDnsAnswer({ query: 'lab.test', qtype: 'NS', expect: [] }, decoded), 'expected NXDOMAIN, got NOERROR [ns1.lab.test, ns2.lab.test]');
});

// --- pure: UDP forwards rendered for qemu and nftables ---

const mailAndDns = [
  { name: 'smtp', host: 2525, guest: 25, protocol: 'tcp' as const },
  { name: 'dns', host: 5353, guest: 53, protocol: 'both' as const },
  { name: 'syslog', host: 5514, guest: 514, protocol: 'udp' as const },
];

test('qemu hostfwd (golden): a both-forward is a tcp and a udp hostfwd, udp alone is udp', (t) => {
  t.is(renderHostForwards('127.0.0.1', mailAndDns), 'hostfwd=tcp:127.0.0.1:2525-:25,hostfwd=tcp:127.0.0.1:5353-:53,hostfwd=udp:127.0.0.1:5353-:53,hostfwd=udp:127.0.0.1:5514-:514');
  t.is(renderHostForwards('127.0.0.1', [{ name: 'ssh', host: 2222, guest: 22 }]), 'hostfwd=tcp:127.0.0.1:2222-:22', 'no protocol (recorded state) is tcp');
});

const nftReason = notRoot() ?? missingCommand(NFT, 'ip');
testUnless(nftReason, 'nft ruleset with UDP forwards: golden DNAT lines, and nft -c accepts it (in a throwaway network namespace)', async (t) => {
  const ruleset = renderForwardRuleset({ labName: 'udp-test', listenAddress: '127.0.0.1', vmAddress: '192.168.150.10', forwards: mailAndDns });
  const prerouting = ruleset.split('chain output')[0]!.split('\n').filter((l) => l.includes('dnat'));
  t.deepEqual(prerouting.map((l) => l.trim()), [
    'ip daddr 127.0.0.1 tcp dport 2525 dnat to 192.168.150.10:25 comment "smtp"',
    'ip daddr 127.0.0.1 tcp dport 5353 dnat to 192.168.150.10:53 comment "dns"',
    'ip daddr 127.0.0.1 udp dport 5353 dnat to 192.168.150.10:53 comment "dns"',
    'ip daddr 127.0.0.1 udp dport 5514 dnat to 192.168.150.10:514 comment "syslog"',
  ]);
  await withTempDir(async (dir) => {
    const file = join(dir, 'rules.nft');
    await writeFile(file, ruleset);
    const netns = `lsu${process.pid % 100000}`;
    await run('ip', ['netns', 'add', netns]);
    try {
      const r = await run('ip', ['netns', 'exec', netns, NFT, '-c', '-f', file], { allowFailure: true });
      t.is(r.exitCode, 0, r.stderr);
      const broken = await run('ip', ['netns', 'exec', netns, NFT, '-c', '-f', '/dev/stdin'], { allowFailure: true, input: ruleset.replace('udp dport 5514', 'udp dprt 5514') });
      t.not(broken.exitCode, 0, 'nft -c rejects a broken rule, so the pass above means something');
    } finally {
      await run('ip', ['netns', 'delete', netns], { allowFailure: true });
    }
  });
});

// --- http against Node's https with the lab CA's certificate ---

testUnless(missingCommand('openssl', 'curl'), 'http checks: status, body and TLS against the lab CA through Host/SNI; wrong status, body and an untrusted certificate fail saying so; curl reproduces', async (t) => {
  await withTempDir(async (dir) => {
    const { ca, impostor } = await labCas(dir);
    const cert = await issueServerCertificate(ca, dir, 'www', { dnsNames: ['www.lab.test'], ipAddresses: [] });
    const forged = await issueServerCertificate(impostor, join(dir, 'impostor'), 'www', { dnsNames: ['www.lab.test'], ipAddresses: [] });
    const serve = (c: typeof cert) =>
      https.createServer({ cert: c.certPem, key: c.keyPem }, (req, res) => {
        // The probe sends the URL's name as Host (curl adds the port): the name is what routes.
        const healthy = req.url === '/health' && req.headers.host?.split(':')[0] === 'www.lab.test';
        res.writeHead(healthy ? 200 : 404, { 'Content-Type': 'text/plain' });
        res.end(healthy ? 'ok: healthy\n' : `not found: ${req.headers.host}${req.url}\n`);
      });
    const good = serve(cert);
    const bad = serve(forged);
    const listen = async (s: https.Server) => {
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      return (s.address() as AddressInfo).port;
    };
    const [port, badPort] = [await listen(good), await listen(bad)];
    try {
      const ctx = ctxFor(dir, ca.certPem);
      const pass = await runCheck(check({ name: 'web', type: 'http', url: `https://www.lab.test:${port}/health`, body: '^ok: healthy' }), ctx);
      t.true(pass.ok, pass.detail);
      t.is(pass.detail, 'status 200, body matches /^ok: healthy/');
      const wrongStatus = await runCheck(check({ name: 'web', type: 'http', url: `https://www.lab.test:${port}/missing` }), ctx);
      t.false(wrongStatus.ok);
      t.regex(wrongStatus.detail, /^status 404, expected 200; body starts "not found: www\.lab\.test\/missing"/);
      const wrongBody = await runCheck(check({ name: 'web', type: 'http', url: `https://www.lab.test:${port}/health`, body: 'v2' }), ctx);
      t.is(wrongBody.detail, 'status 200, but the body does not match /v2/; it starts "ok: healthy"');
      const untrusted = await runCheck(check({ name: 'web', type: 'http', url: `https://www.lab.test:${badPort}/health` }), ctx);
      t.false(untrusted.ok);
      t.regex(untrusted.detail, /unable to get local issuer certificate|self.signed|unable to verify/i);
      const wrongName = await runCheck(check({ name: 'web', type: 'http', url: `https://mail.lab.test:${port}/health` }), ctx);
      t.regex(wrongName.detail, /Host: mail\.lab\.test\. is not in the cert's altnames: DNS:www\.lab\.test/);
      // The reproduce command runs as printed.
      const line = pass.reproduce;
      t.is(line, `curl -sS -o /dev/null -w '%{http_code}\\n' --resolve www.lab.test:${port}:127.0.0.1 --cacert ${join(dir, 'ca.crt')} https://www.lab.test:${port}/health`);
      const curl = await run('sh', ['-c', line]);
      t.is(curl.stdout.trim(), '200');
    } finally {
      good.close();
      bad.close();
    }
  });
});

// --- tcp banners ---

test('tcp checks: an IMAP-style banner matches, a wrong banner and a closed port fail saying what was seen', async (t) => {
  const server: Server = createServer((s) => s.end('* OK [CAPABILITY IMAP4rev1] labsmith test ready\r\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    const ctx = ctxFor('/nonexistent', '');
    const pass = await runCheck(check({ name: 'imap', type: 'tcp', port, banner: '^\\* OK' }), ctx);
    t.true(pass.ok, pass.detail);
    t.is(pass.detail, 'banner "* OK [CAPABILITY IMAP4rev1] labsmith test ready"');
    const wrong = await runCheck(check({ name: 'smtp', type: 'tcp', port, banner: '^220' }), ctx);
    t.is(wrong.detail, 'banner "* OK [CAPABILITY IMAP4rev1] labsmith test ready" does not match /^220/');
    const closed = await runCheck(check({ name: 'closed', type: 'tcp', port: await freePort() }), ctx);
    t.regex(closed.detail, /cannot connect to 127\.0\.0\.1:\d+: ECONNREFUSED/);
    const printed = await run('sh', ['-c', pass.reproduce]);
    t.regex(printed.stdout, /^\* OK/, 'the reproduce command prints the banner');
  } finally {
    server.close();
  }
});

// --- smtp against Debian's exim, private config and spool ---

/**
 * Stops exim's daemon and waits for the children it forked per connection (same command line):
 * they outlive it, and one still writing its log would recreate the test's removed directory.
 */
async function stopExim(exim: { child: ChildProcess; config: string }): Promise<void> {
  await stop(exim.child);
  for (let i = 0; i < 100 && (await pidsWithCommandLine(exim.config)).length; i++) await sleep(100);
  for (const pid of await pidsWithCommandLine(exim.config)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited since the scan
    }
  }
}

async function startExim(dir: string, port: number, cert: { certPem: string; keyPem: string }): Promise<{ child: ChildProcess; config: string; spool: string; log: () => string }> {
  const spool = join(dir, 'spool');
  await mkdir(join(dir, 'log'), { recursive: true });
  await mkdir(spool, { recursive: true });
  await writeFile(join(dir, 'mail.crt'), cert.certPem);
  await writeFile(join(dir, 'mail.key'), cert.keyPem, { mode: 0o600 });
  // Everything exim writes stays in dir: the host's /etc/exim4 and its spool are not used.
  const config = `primary_hostname = mail.lab.test
keep_environment =
exim_user = root
exim_group = root
never_users =
spool_directory = ${spool}
log_file_path = ${dir}/log/%slog
pid_file_path = ${dir}/exim.pid
local_interfaces = 127.0.0.1
daemon_smtp_ports = ${port}
tls_advertise_hosts = *
tls_certificate = ${dir}/mail.crt
tls_privatekey = ${dir}/mail.key
queue_only = true
domainlist local_domains = lab.test
acl_smtp_rcpt = acl_check_rcpt
begin acl
acl_check_rcpt:
  accept domains = +local_domains
         local_parts = postmaster
  deny message = no such user here
begin routers
local:
  driver = accept
  domains = +local_domains
  transport = discard
begin transports
discard:
  driver = appendfile
  file = /dev/null
`;
  await writeFile(join(dir, 'exim.conf'), config);
  let output = '';
  const child = spawn('exim4', ['-C', join(dir, 'exim.conf'), '-bdf', '-oX', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const log = () => output;
  await waitForPort(port, child, log);
  return { child, config: join(dir, 'exim.conf'), spool, log };
}

testUnless(missingCommand('exim4', 'openssl'), 'smtp checks against exim: EHLO, STARTTLS verified against the lab CA and a message to a local recipient pass; an untrusted certificate, a wrong name and a refused recipient fail saying so', async (t) => {
  await withTempDir(async (dir) => {
    const { ca, impostor } = await labCas(dir);
    const cert = await issueServerCertificate(ca, dir, 'mail', { dnsNames: ['mail.lab.test'], ipAddresses: [] });
    const port = await freePort();
    const exim = await startExim(join(dir, 'exim'), port, cert);
    try {
      const ctx = ctxFor(dir, ca.certPem);
      const mail = { name: 'mail', type: 'smtp', port, tlsName: 'mail.lab.test' };
      const pass = await runCheck(check({ ...mail, sendTo: 'postmaster@lab.test' }), ctx);
      t.true(pass.ok, pass.detail);
      t.regex(pass.detail, /^greeting "220 mail\.lab\.test ESMTP Exim 4\.\d+.*", TLS TLSv1\.[23] verified for mail\.lab\.test, message to postmaster@lab\.test accepted \(OK id=[\w-]+\)$/);
      const queued = (await readdir(join(exim.spool, 'input'), { recursive: true })).filter((f) => String(f).endsWith('-H'));
      t.is(queued.length, 1, 'exim queued the test message');
      const header = await readFile(join(exim.spool, 'input', String(queued[0])), 'utf8');
      t.regex(header, /Subject: labsmith check mail/);

      const untrusted = await runCheck(check(mail), ctxFor(dir, impostor.certPem));
      t.false(untrusted.ok);
      t.regex(untrusted.detail, /^STARTTLS: the certificate was not accepted for mail\.lab\.test: .*(local issuer|self.signed|unable to verify)/i);
      const wrongName = await runCheck(check({ ...mail, tlsName: 'smtp.lab.test' }), ctx);
      t.regex(wrongName.detail, /not accepted for smtp\.lab\.test: .*altnames: DNS:mail\.lab\.test/);
      const refused = await runCheck(check({ ...mail, sendTo: 'nobody@lab.test' }), ctx);
      t.regex(refused.detail, /^after EHLO labsmith\.invalid, STARTTLS, EHLO labsmith\.invalid, MAIL FROM:<labsmith@labsmith\.invalid>, RCPT TO:<nobody@lab\.test>: 550 "550 no such user here", expected 250$/);
      const banner = await runCheck(check({ name: 'banner', type: 'tcp', port, banner: '^220 ' }), ctx);
      t.true(banner.ok, banner.detail);

      // The reproduce command runs as printed (openssl reads stdin: give it none).
      const s = await run('sh', ['-c', `${pass.reproduce} </dev/null`], { allowFailure: true });
      t.regex(s.stderr + s.stdout, /Verification: OK/);
    } finally {
      await stopExim(exim);
    }
    t.is(exim.child.exitCode !== null || exim.child.signalCode !== null, true, 'exim stopped');
    t.deepEqual(await pidsWithCommandLine(exim.config), [], 'no exim process of this test is left');
  });
});

// --- dns against dnsmasq over UDP and TCP ---

const DNS_RECORDS = [
  '--host-record=www.lab.test,192.0.2.10,2001:db8::10',
  '--mx-host=lab.test,mail.lab.test,10',
  '--txt-record=lab.test,v=spf1 -all',
  '--cname=alias.lab.test,www.lab.test',
  '--srv-host=_imaps._tcp.lab.test,mail.lab.test,993,0,5',
  '--ptr-record=10.2.0.192.in-addr.arpa,www.lab.test',
];

testUnless(missingCommand('dnsmasq', 'dig'), 'dns checks against dnsmasq: A, AAAA, MX, TXT, CNAME, SRV and PTR over UDP and TCP; a wrong answer and NXDOMAIN fail saying so; dig reproduces', async (t) => {
  const port = await freePort();
  let output = '';
  // No config file, no upstreams, no /etc/hosts: only the records above; lab.test is local (NXDOMAIN for the rest).
  const child = spawn('dnsmasq', ['--no-daemon', '--conf-file=/dev/null', `--port=${port}`, '--listen-address=127.0.0.1', '--bind-interfaces', '--no-resolv', '--no-hosts', '--pid-file=', '--user=root', '--local=/lab.test/', ...DNS_RECORDS], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr!.on('data', (d) => (output += d));
  try {
    await waitForPort(port, child, () => output);
    const ctx = ctxFor('/nonexistent', '');
    const cases: [string, string, string[]][] = [
      ['www.lab.test', 'A', ['192.0.2.10']],
      ['www.lab.test', 'AAAA', ['2001:db8::10']],
      ['lab.test', 'MX', ['10 mail.lab.test']],
      ['lab.test', 'TXT', ['v=spf1 -all']],
      ['alias.lab.test', 'CNAME', ['www.lab.test.']],
      ['_imaps._tcp.lab.test', 'SRV', ['0 5 993 mail.lab.test']],
      ['10.2.0.192.in-addr.arpa', 'PTR', ['www.lab.test']],
      ['missing.lab.test', 'A', []],
    ];
    for (const [query, qtype, expect] of cases) {
      const r = await runCheck(check({ name: 'dns', type: 'dns', port, query, qtype, expect }), ctx);
      t.true(r.ok, `${query} ${qtype}: ${r.detail}`);
      t.regex(r.detail, /^udp: .*; tcp: /, `${query} ${qtype} asked over both transports`);
    }
    const wrong = await runCheck(check({ name: 'dns', type: 'dns', port, query: 'www.lab.test', expect: ['192.0.2.99'] }), ctx);
    t.is(wrong.detail, 'udp: www.lab.test A answered [192.0.2.10], expected [192.0.2.99]');
    const tcpOnly = await runCheck(check({ name: 'dns', type: 'dns', port, query: 'www.lab.test', qtype: 'MX', expect: ['10 www.lab.test'], transports: ['tcp'] }), ctx);
    t.regex(tcpOnly.detail, /^tcp: www\.lab\.test MX answered \[\], expected \[10 www\.lab\.test\]$/);
    const nx = await runCheck(check({ name: 'dns', type: 'dns', port, query: 'missing.lab.test', expect: ['192.0.2.1'] }), ctx);
    t.is(nx.detail, 'udp: NXDOMAIN for missing.lab.test A, expected [192.0.2.1]');
    const silent = await runCheck(check({ name: 'dns', type: 'dns', port: await freePort(), query: 'www.lab.test', expect: ['192.0.2.10'], timeoutSeconds: 2 }), ctx);
    t.false(silent.ok);
    t.regex(silent.detail, /udp: UDP 127\.0\.0\.1:\d+: ECONNREFUSED|timed out/);

    const pass = await runCheck(check({ name: 'dns', type: 'dns', port, query: 'www.lab.test', expect: ['192.0.2.10'] }), ctx);
    t.is(pass.reproduce, `dig @127.0.0.1 -p ${port} +notcp www.lab.test A && dig @127.0.0.1 -p ${port} +tcp www.lab.test A`);
    const dig = await run('sh', ['-c', pass.reproduce]);
    t.is((dig.stdout.match(/^www\.lab\.test\.\s+\d+\s+IN\s+A\s+192\.0\.2\.10$/gm) ?? []).length, 2);
  } finally {
    await stop(child);
  }
});

// --- command checks and the report ---

test('command checks skip with the reason on a server given by --host; user checks are reported under their own names in TAP, JUnit and JSON', async (t) => {
  const ctx = { ...ctxFor('/nonexistent', ''), ssh: undefined };
  const cmd = await runCheck(check({ name: 'pods', type: 'command', run: 'kubectl get pods -A', output: 'Running' }), ctx);
  t.is(cmd.skipped, 'no SSH access to the node (server given by --host)');
  const server: Server = createServer((s) => s.end('220 ready\r\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    const lines: string[] = ['TAP version 14', '1..2'];
    await runCheckList([check({ name: 'smtp-banner', type: 'tcp', port, banner: '^220' }), check({ name: 'imap-banner', type: 'tcp', port, banner: '^\\* OK', hint: 'is dovecot running?' })], ctx, (l) => lines.push(l), { first: 1 });
    const report = await parseTap(lines.join('\n') + '\n');
    t.is(report.pass, 1);
    t.is(report.fail, 1);
    const junit = renderJunit(report, 'labsmith acceptance (test)');
    t.regex(junit, /testcase name="user\/smtp-banner: port \d+ accepts a connection and greets with \/\^220\/"/);
    t.regex(junit, /user\/imap-banner/);
    const json = renderJsonReport(report);
    t.regex(json, /"reproduce": "timeout 5 bash -c/);
    t.regex(json, /is dovecot running\?/);
  } finally {
    server.close();
  }
});

test("the suite's plan runs lab.yaml checks after the built-in ones, in their order, as user/<name>", (t) => {
  const config = fillDefaults({ network: { forwards: { smtp: { host: 2525 } } }, checks: [{ name: 'mail', type: 'tcp', port: 2525, banner: '^220' }, { name: 'pods', type: 'command', run: 'kubectl get pods -A' }] } as LabConfigInput, '/state');
  const plan = suiteChecks(ctxFor('/nonexistent', ''), config.checks);
  t.deepEqual(plan.user.map((c) => c.id), ['user/mail', 'user/pods']);
  t.deepEqual(plan.user.map((c) => [c.timeoutMs, c.retry.attempts]), [[30_000, 3], [30_000, 3]]);
  const builtIn = new Set([...plan.host, ...plan.cluster].map((c) => c.id));
  t.false(plan.user.some((c) => builtIn.has(c.id)), 'user check ids never collide with built-in ones');
  t.deepEqual(suiteChecks(ctxFor('/nonexistent', '')).user, []);
});

test('runAcceptanceSuite runs the user checks after the built-in suite and reports them in TAP, JUnit and JSON under their own names', async (t) => {
  const server: Server = createServer((s) => s.end('220 mail.lab.test ESMTP\r\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  // A server given by --host with no cluster: the built-in host checks skip, cluster checks fail at once.
  const ctx = { ...ctxFor('/nonexistent', ''), ssh: undefined, stateDir: undefined };
  const config = fillDefaults({ network: { forwards: { smtp: { host: port } } }, checks: [{ name: 'smtp-banner', type: 'tcp', port, banner: '^220 ', retries: 0 }, { name: 'imap-banner', type: 'tcp', port, banner: '^\\* OK', retries: 0, hint: 'is dovecot running?' }] } as LabConfigInput, '/state');
  try {
    await withTempDir(async (dir) => {
      const run1 = await runAcceptanceSuite({ ctx, name: 'user-checks', reportDir: dir, userChecks: config.checks });
      const { host, cluster } = suiteChecks(ctx);
      const total = host.length + cluster.length + 2;
      t.is(run1.report.count, total);
      t.is(run1.report.fail, cluster.length + 1);
      const points = run1.tap.split('\n').filter((l) => /^(not )?ok \d+ /.test(l));
      t.regex(points.at(-2)!, new RegExp(`^ok ${total - 1} - user/smtp-banner: port ${port} accepts a connection and greets with /\\^220 /`));
      t.regex(points.at(-1)!, new RegExp(`^not ok ${total} - user/imap-banner: `));
      t.regex(await readFile(run1.files.junit, 'utf8'), /<testcase name="user\/smtp-banner: [^"]*"/);
      const json = JSON.parse(await readFile(run1.files.json, 'utf8')) as { checks: { name: string; ok: boolean; reproduce?: string; hint?: string; detail?: string }[] };
      const imap = json.checks.find((c) => c.name.startsWith('user/imap-banner'))!;
      t.false(imap.ok);
      t.is(imap.hint, 'is dovecot running?');
      t.is(imap.reproduce, `timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/${port}; head -n1 <&3'`);
    });
  } finally {
    server.close();
  }
});
