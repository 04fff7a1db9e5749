/**
 * The scripts that run in the guest (cloud-init/guest/): shipped byte for byte, shellcheck clean
 * (Debian's shellcheck, every shell script in the folder and every rendered parameter file), their
 * parameter files quoted by one function that a real shell and Python's shlex read back exactly,
 * and the placeholder ingress serving TLS while a silent client holds a connection open.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { connect } from 'node:net';
import { join } from 'node:path';
import { run } from '../../core/exec.ts';
import { GUEST_PARAM_FILES, GUEST_PATHS, GUEST_SCRIPT_SOURCES, BOOTSTRAP_PATHS, REPO_ROOT } from '../../core/paths.ts';
import { HOST_TOOLS } from '../../core/host-tools.ts';
import { renderBootstrapParams } from '../../cloud-init/bootstrap.ts';
import { renderParamFile, shellQuote } from '../../cloud-init/guest-params.ts';
import { guestScript, guestScriptPath } from '../../cloud-init/guest-scripts.ts';
import { PLACEHOLDER_SERVER_HEADER, renderPlaceholderParams } from '../../cloud-init/placeholder-ingress.ts';
import { renderSeedFiles, type SeedSecrets } from '../../cloud-init/user-data.ts';
import { renderImportImagesParams } from '../../images/kubernetes/rootfs-files.ts';
import { fillDefaults } from '../../config/defaults.ts';
import { freePorts } from '../../lab/ports.ts';
import { ensureLabCa, issueServerCertificate } from '../../lab/secrets.ts';
import { missingCommand, readSeedUserData, testUnless, withTempDir } from '../helpers.ts';

const GUEST_DIR = join(REPO_ROOT, GUEST_SCRIPT_SOURCES.dir);
const shellScripts = readdirSync(GUEST_DIR).filter((f) => f.endsWith('.sh')).sort();
const pythonScripts = readdirSync(GUEST_DIR).filter((f) => f.endsWith('.py')).sort();

/** Under CI=true a missing tool that CI installs is a failure, not a skip. */
function testNeeding(reason: string | undefined, title: string, body: (t: ExecutionContext) => Promise<void>): void {
  if (reason && process.env.CI === 'true') test(title, (t) => t.fail(`CI=true: ${reason}`));
  else testUnless(reason, title, body);
}

const TRICKY = ['plain', 'with space', "it's", 'a "quoted" word', '$HOME and ${PATH}', '`id`', '$(id)', 'back\\slash', 'semi;colon & amp | pipe', '*', "'", '', '--flag=x'];

test('shellQuote: a table of values, each one quoted; newlines and NUL refused', (t) => {
  t.is(shellQuote('plain'), "'plain'");
  t.is(shellQuote("it's"), `'it'\\''s'`);
  t.is(shellQuote('$HOME'), "'$HOME'");
  t.is(shellQuote(''), "''");
  for (const bad of ['two\nlines', 'cr\r', 'nul\0']) t.throws(() => shellQuote(bad), { message: /newline or NUL/ }, JSON.stringify(bad));
  t.throws(() => renderParamFile('x.sh', { lower: 'v' }), { message: /guest parameter "lower" of x\.sh/ });
  t.throws(() => renderParamFile('x.sh', { KEY: 'a\nb' }), { message: /guest parameter KEY of x\.sh: .*newline/ });
});

testUnless(missingCommand('sh', 'python3'), 'a parameter file reads back exactly in sh (sourced) and in Python (shlex), whatever the values hold', async (t) => {
  await withTempDir(async (dir) => {
    const params = Object.fromEntries(TRICKY.map((v, i) => [`V${i}`, v]));
    const file = join(dir, 'params.env');
    await writeFile(file, renderParamFile('test', params));
    // NUL-separated, so every byte of every value is compared.
    const sh = await run('sh', ['-c', `. "$1"; for i in ${TRICKY.map((_, i) => i).join(' ')}; do eval "printf '%s\\\\0' \\"\\$V$i\\""; done`, 'sh', file], { env: { HOME: '/nowhere' } });
    t.deepEqual(sh.stdout.split('\0').slice(0, -1), TRICKY, 'sh');
    const py = await run('python3', ['-c', `import runpy,sys; m=runpy.run_path(sys.argv[1]); p=m['read_params'](sys.argv[2]); sys.stdout.write(''.join(p['V%d' % i] + '\\0' for i in range(${TRICKY.length})))`, guestScriptPath('placeholderIngress'), file]);
    t.deepEqual(py.stdout.split('\0').slice(0, -1), TRICKY, "the placeholder's reader (shlex)");
  });
});

test('the guest folder holds the five scripts; every one is executable and has its interpreter line', (t) => {
  t.deepEqual([...shellScripts, ...pythonScripts], ['bootstrap.sh', 'import-images.sh', 'unpack-seed-files.sh', 'dns-probe.py', 'placeholder-ingress.py']);
  for (const f of [...shellScripts, ...pythonScripts]) {
    const text = readFileSync(join(GUEST_DIR, f), 'utf8');
    t.is(statSync(join(GUEST_DIR, f)).mode & 0o755, 0o755, `${f} is executable`);
    t.regex(text, f.endsWith('.sh') ? /^#!\/bin\/(ba)?sh\n/ : /^#!\/usr\/bin\/python3\n/, f);
    t.notRegex(text, /LABSMITH_[A-Z_]+/, `${f} reads no labsmith environment variable: its parameters come from its file`);
  }
});

testNeeding(missingCommand('shellcheck'), 'shellcheck: every guest shell script and every rendered parameter file is clean', async (t) => {
  t.true(HOST_TOOLS.some((tool) => tool.command === 'shellcheck'), "the doctor's list installs shellcheck");
  t.true(shellScripts.length >= 2);
  for (const f of shellScripts) {
    const r = await run('shellcheck', ['--norc', join(GUEST_DIR, f)], { allowFailure: true });
    t.is(r.exitCode, 0, `${f}:\n${r.stdout}${r.stderr}`);
  }
  await withTempDir(async (dir) => {
    const rendered = {
      'bootstrap.env': renderBootstrapParams({ addons: [{ file: '10-calico.yaml', text: '' }, { file: '50-traefik.yaml', text: '' }], dnsDomain: 'cluster.local' }),
      'import-images.env': renderImportImagesParams(),
      'placeholder-ingress.env': renderPlaceholderParams({ httpPort: 30080, httpsPort: 30443 }),
    };
    for (const [name, text] of Object.entries(rendered)) {
      await writeFile(join(dir, name), text);
      const r = await run('shellcheck', ['--norc', join(dir, name)], { allowFailure: true });
      t.is(r.exitCode, 0, `${name}:\n${r.stdout}${r.stderr}`);
    }
  });
  // shellcheck does find problems: an unquoted expansion is reported.
  await withTempDir(async (dir) => {
    await writeFile(join(dir, 'bad.sh'), '#!/bin/sh\nrm -rf $1/x\n');
    const r = await run('shellcheck', ['--norc', join(dir, 'bad.sh')], { allowFailure: true });
    t.not(r.exitCode, 0);
    t.regex(r.stdout, /SC2086/);
  });
});

testUnless(missingCommand('python3'), 'the Python guest scripts compile', async (t) => {
  for (const f of pythonScripts) {
    const r = await run('python3', ['-c', 'import ast,sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])', join(GUEST_DIR, f)], { allowFailure: true });
    t.is(r.exitCode, 0, `${f}: ${r.stderr}`);
  }
});

const secrets: SeedSecrets = { sshPublicKey: 'ssh-ed25519 AAAA lab', hostKey: { privateKey: 'k', publicKey: 'ssh-ed25519 BBBB host' }, caCert: 'CA\n', tlsCert: 'TLS\n', tlsKey: 'KEY\n' };

test('the seed ships the scripts byte for byte, with their parameter files and units that pass them', (t) => {
  const config = fillDefaults({ name: 'web' }, '/state');
  const files = (cluster?: Parameters<typeof renderSeedFiles>[2]) =>
    Object.fromEntries(Object.values(readSeedUserData(renderSeedFiles(config, secrets, cluster)['user-data']).files).map((f) => [f.path, f.content]));
  const os = files();
  t.is(os[GUEST_PATHS.placeholderScript], guestScript('placeholderIngress'));
  t.regex(os[GUEST_PARAM_FILES.placeholderIngress]!, /^HTTPS_PORT='30443'$/m);
  t.regex(os[GUEST_PATHS.placeholderUnit]!, new RegExp(`^ExecStart=${GUEST_PATHS.placeholderScript} ${GUEST_PARAM_FILES.placeholderIngress}$`, 'm'));
  const k8s = files({ kubeadmConfig: 'kind: InitConfiguration\n', addons: [{ file: '10-calico.yaml', text: 'kind: List\n' }], pauseImage: 'registry.k8s.io/pause:3.10.1' });
  t.is(k8s[BOOTSTRAP_PATHS.script], guestScript('bootstrap'));
  t.is(k8s[BOOTSTRAP_PATHS.dnsProbe], guestScript('dnsProbe'));
  t.regex(k8s[GUEST_PARAM_FILES.bootstrap]!, /^ADDONS='10-calico\.yaml'$/m);
  t.regex(k8s[BOOTSTRAP_PATHS.unit]!, new RegExp(`^ExecStart=${BOOTSTRAP_PATHS.script} ${GUEST_PARAM_FILES.bootstrap}$`, 'm'));
});

function tlsGet(port: number, ca: string): Promise<{ status: number; server: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, servername: 'localhost', ca, path: '/', timeout: 5000, headers: { Host: 'unknown.web.test' } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, server: String(res.headers.server ?? '') }));
    });
    req.on('timeout', () => req.destroy(new Error('no TLS answer within 5 s')));
    req.on('error', reject);
  });
}

testUnless(missingCommand('python3', 'openssl'), 'the placeholder ingress answers a TLS client while a silent client holds a connection, and drops the silent one after its handshake timeout', async (t) => {
  await withTempDir(async (dir) => {
    const ca = await ensureLabCa(dir, 'web');
    const leaf = await issueServerCertificate(ca, dir, 'placeholder', { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    const creds = join(dir, 'credentials');
    await mkdir(creds, { mode: 0o700 });
    await writeFile(join(creds, 'tls.crt'), leaf.certPem);
    await writeFile(join(creds, 'tls.key'), leaf.keyPem, { mode: 0o600 });
    const { httpPort, httpsPort } = await freePorts(['httpPort', 'httpsPort']);
    const params = join(dir, 'placeholder-ingress.env');
    await writeFile(params, renderPlaceholderParams({ httpPort, httpsPort, listenAddress: '127.0.0.1', handshakeTimeout: 2 }));
    // systemd's LoadCredential hands the service $CREDENTIALS_DIRECTORY; here the test does.
    const server = spawn('python3', [guestScriptPath('placeholderIngress'), params], { env: { ...process.env, CREDENTIALS_DIRECTORY: creds }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    server.stderr.on('data', (d) => (stderr += d));
    try {
      let up = false;
      for (let i = 0; i < 100 && !up; i++) {
        up = await new Promise<boolean>((r) => {
          const s = connect(httpPort, '127.0.0.1', () => (s.destroy(), r(true)));
          s.on('error', () => r(false));
        });
        if (!up) await new Promise((r) => setTimeout(r, 100));
      }
      t.true(up, `the placeholder listens: ${stderr}`);

      // A client that connects and never sends its ClientHello.
      const silent = connect(httpsPort, '127.0.0.1');
      const silentClosed = new Promise<number>((r) => {
        const start = Date.now();
        silent.on('close', () => r(Date.now() - start));
        silent.on('error', () => undefined);
      });
      await new Promise((r) => silent.once('connect', r));

      const answer = await tlsGet(httpsPort, ca.certPem);
      t.is(answer.status, 404);
      t.true(answer.server.startsWith(PLACEHOLDER_SERVER_HEADER), answer.server);
      const again = await tlsGet(httpsPort, ca.certPem);
      t.is(again.status, 404, 'and the next one too');

      const closedAfter = await Promise.race([silentClosed, new Promise<number>((r) => setTimeout(() => r(-1), 10_000))]);
      t.true(closedAfter > 0, 'the silent connection is closed by the server after its handshake timeout');
      silent.destroy();
    } finally {
      server.kill('SIGTERM');
      await new Promise((r) => (server.exitCode !== null ? r(undefined) : server.once('exit', r)));
    }
  });
});
