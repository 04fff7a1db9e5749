/**
 * lab.yaml `registries:` from the config to containerd: validation with field paths, the files
 * read at lab:up, the rendered hosts.toml/CA/keyring in the seed (placeholders in lab:render), and
 * for real: Debian's containerd 1.7 with the image's own config (CRI on, config_path) pulling
 * through the CRI, as the kubelet does, from Debian's docker-registry on loopback over TLS (a CA
 * the test makes) with htpasswd auth. The hosts.toml is written while containerd runs.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { clusterImages, workloadImages, workloadImagesMissingFromLock } from '../../cloud-init/addons/bundle.ts';
import { CONTAINERD_CERTS_DIR, renderContainerdConfig } from '../../cloud-init/containerd-config.ts';
import { renderKubeletRegistryAuth, renderRegistryFiles, type RegistryMaterial } from '../../cloud-init/registries.ts';
import { renderServerSeedFiles } from '../../cloud-init/server-seed.ts';
import { renderUserData } from '../../cloud-init/user-data.ts';
import { loadLabConfig, parseLabConfig } from '../../config/load.ts';
import { UnreachableError } from '../../core/download.ts';
import { LabError } from '../../core/errors.ts';
import { skopeoFailure } from '../../images/artifacts/store.ts';
import { run } from '../../core/exec.ts';
import { GUEST_PATHS } from '../../core/paths.ts';
import { loadImageSource } from '../../images/source.ts';
import { sleep } from '../../core/sleep.ts';
import { readRegistryMaterial } from '../../lab/registries.ts';
import { PLACEHOLDER_SECRETS, planRenderedLab } from '../../lab/render.ts';
import { ensureLabCa, issueServerCertificate } from '../../lab/secrets.ts';
import { criPullImage } from '../fixtures/cri-client.ts';
import { buildOciLayout } from '../fixtures/oci.ts';
import { missingCommand, NEUTRAL_HOST, notRoot, readSeedUserData, testUnless, withTempDir } from '../helpers.ts';

const problemsOf = (yaml: string) => {
  const r = parseLabConfig(yaml, NEUTRAL_HOST, '/state');
  return r.ok ? [] : r.problems.map((p) => `${p.path}: ${p.message}`);
};

test('registries: load as written; every bad field is named with its path', (t) => {
  const ok = parseLabConfig('registries:\n  - host: registry.example.com:5000\n    ca: certs/ca.crt\n    mirrorOf: docker.io\n    credentials: { username: ci, password: { env: REG_PASSWORD } }\n  - host: ghcr.example.org\n', NEUTRAL_HOST, '/state');
  t.true(ok.ok);
  if (ok.ok) t.deepEqual(ok.config.registries, [{ host: 'registry.example.com:5000', ca: 'certs/ca.crt', mirrorOf: 'docker.io', credentials: { username: 'ci', password: { env: 'REG_PASSWORD' } } }, { host: 'ghcr.example.org' }]);
  t.deepEqual(parseLabConfig('', NEUTRAL_HOST, '/state').ok && parseLabConfig('', NEUTRAL_HOST, '/state'), parseLabConfig('registries: []\n', NEUTRAL_HOST, '/state'));

  // Shape problems first (the loader reports them at once), then what the registries mean together.
  t.deepEqual(
    problemsOf(
      [
        'registries:',
        '  - host: https://registry.example.com/v2',
        '  - host: Registry.Example.com',
        '  - { host: a.example:5000, credentials: { username: { env: U }, password: { env: P, file: p.txt } } }',
        '  - { host: b.example, credentials: { username: u } }',
        '  - { host: c.example, token: x }',
      ].join('\n') + '\n',
    ),
    [
      'registries.0.host: "https://registry.example.com/v2" is not a registry host[:port] such as "registry.example.com:5000" (lowercase, no scheme or path)',
      'registries.1.host: "Registry.Example.com" is not a registry host[:port] such as "registry.example.com:5000" (lowercase, no scheme or path)',
      'registries.2.credentials.password: give exactly one of file or env',
      'registries.3.credentials.password: expected a mapping, got undefined',
      'registries.4: unknown field token',
    ],
  );
  t.deepEqual(
    problemsOf(
      [
        'registries:',
        '  - { host: c.example:70000 }',
        '  - { host: index.docker.io }',
        '  - { host: d.example, mirrorOf: docker.io }',
        '  - { host: e.example, mirrorOf: docker.io }',
        '  - { host: d.example }',
        '  - { host: f.example, mirrorOf: f.example }',
      ].join('\n') + '\n',
    ),
    [
      'registries.0.host: port 70000 is not a TCP port (1 to 65535)',
      'registries.1.host: "index.docker.io" is Docker Hub: write docker.io (containerd reads certs.d/docker.io for every Docker Hub image)',
      'registries.3.mirrorOf: "docker.io" is also registries.2.mirrorOf: containerd has one certs.d/docker.io/hosts.toml, so each registry and each mirrored registry appears once',
      'registries.4.host: "d.example" is also registries.2.host: containerd has one certs.d/d.example/hosts.toml, so each registry and each mirrored registry appears once',
      'registries.5.mirrorOf: is the registry itself: name the registry it mirrors (e.g. docker.io), or leave it out',
    ],
  );
});

test('lab:up reads each CA and credential from its file or variable; every problem named by field, no value in the message', async (t) => {
  await withTempDir(async (dir) => {
    const ca = await ensureLabCa(dir, 'registry');
    await writeFile(join(dir, 'password'), 'file-secret-value\n');
    await writeFile(join(dir, 'not-a-cert.pem'), 'hello\n');
    await mkdir(join(dir, 'conf'));
    await writeFile(join(dir, 'conf', 'lab.yaml'), `registries:\n  - { host: a.example, ca: ../ca.crt, credentials: { username: { env: LABSMITH_T_USER }, password: { file: ../password } } }\n`);
    // Relative to lab.yaml's directory, not the working directory.
    const config = await loadLabConfig(join(dir, 'conf', 'lab.yaml'), { purpose: 'existing' });
    t.is(config.registries[0]!.ca, ca.certPath);
    const material = await readRegistryMaterial(config.registries, { LABSMITH_T_USER: 'ci' });
    t.deepEqual(material, [{ host: 'a.example', caPem: ca.certPem.replace(/\n$/, '') + '\n', credentials: { username: 'ci', password: 'file-secret-value' } }]);

    const error = await t.throwsAsync(
      readRegistryMaterial(
        [
          { host: 'a.example', ca: join(dir, 'missing.crt'), credentials: { username: { env: 'LABSMITH_T_UNSET' }, password: { file: join(dir, 'password') } } },
          { host: 'b.example', ca: join(dir, 'not-a-cert.pem'), credentials: { username: 'a:b', password: { env: 'LABSMITH_T_PASSWORD' } } },
        ],
        { LABSMITH_T_PASSWORD: 'env-secret-value' },
      ),
    );
    t.true(error instanceof LabError);
    t.is(error!.message, [
      `registries.0.ca: cannot read ${join(dir, 'missing.crt')} (ENOENT)`,
      'registries.0.credentials.username: the environment variable LABSMITH_T_UNSET is not set (or empty)',
      `registries.1.ca: ${join(dir, 'not-a-cert.pem')} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
      'registries.1.credentials.username: a registry user name cannot contain ":"',
    ].join('\n'));
    t.false(error!.message.includes('secret-value'));
  });
});

test('the seed carries hosts.toml, the CA and the kubelet keyring (0600); lab:render shows placeholders, never a credential', (t) => {
  const parsed = parseLabConfig('registries:\n  - { host: "registry.example.com:5000", ca: /etc/ca.crt, mirrorOf: docker.io, credentials: { username: ci, password: { env: REG_PASSWORD } } }\n  - { host: plain.example }\n', NEUTRAL_HOST, '/state');
  if (!parsed.ok) return t.fail(JSON.stringify(parsed.problems));
  const material: RegistryMaterial[] = [
    { host: 'registry.example.com:5000', mirrorOf: 'docker.io', caPem: '-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n', credentials: { username: 'ci', password: 's3cret' } },
    { host: 'plain.example' },
  ];
  const files = renderRegistryFiles(material);
  t.deepEqual(files.map((f) => `${f.permissions} ${f.path}`), [
    `0644 ${CONTAINERD_CERTS_DIR}/registry.example.com:5000/hosts.toml`,
    `0644 ${CONTAINERD_CERTS_DIR}/registry.example.com:5000/ca.crt`,
    `0644 ${CONTAINERD_CERTS_DIR}/docker.io/hosts.toml`,
    `0644 ${CONTAINERD_CERTS_DIR}/plain.example/hosts.toml`,
    `0600 ${GUEST_PATHS.kubeletRegistryAuth}`,
  ]);
  const toml = (i: number) => parseToml(files[i]!.content) as Record<string, any>;
  t.deepEqual(toml(0), { server: 'https://registry.example.com:5000', host: { 'https://registry.example.com:5000': { capabilities: ['pull', 'resolve'], ca: `${CONTAINERD_CERTS_DIR}/registry.example.com:5000/ca.crt` } } });
  t.deepEqual(toml(2), { server: 'https://registry-1.docker.io', host: { 'https://registry.example.com:5000': { capabilities: ['pull', 'resolve'], ca: `${CONTAINERD_CERTS_DIR}/registry.example.com:5000/ca.crt` } } });
  t.deepEqual(toml(3), { server: 'https://plain.example', host: { 'https://plain.example': { capabilities: ['pull', 'resolve'] } } });
  const auth = Buffer.from('ci:s3cret').toString('base64');
  t.deepEqual(JSON.parse(files[4]!.content), { auths: { 'registry.example.com:5000': { auth }, 'docker.io': { auth } } });
  t.is(renderKubeletRegistryAuth([{ host: 'plain.example' }]), undefined, 'no keyring without credentials');

  const userData = renderUserData(parsed.config, { ...PLACEHOLDER_SECRETS, registries: material });
  const written = Object.values(readSeedUserData(userData).files);
  t.deepEqual(written.find((f) => f.path === GUEST_PATHS.kubeletRegistryAuth)?.permissions, '0600');
  t.truthy(written.find((f) => f.path === `${CONTAINERD_CERTS_DIR}/docker.io/hosts.toml`));

  // The real server's seed (server:seed) carries the same files: it pulls from the same registries.
  const server = parseLabConfig('server: { domain: example.org, network: { match: { macAddress: "52:54:00:12:34:56" }, ipv4: { address: 203.0.113.10/24, gateway: 203.0.113.1 }, dns: { servers: [192.0.2.53] } }, authorizedKeyFiles: [keys.pub] }\n', NEUTRAL_HOST, '/state');
  if (!server.ok) return t.fail(JSON.stringify(server.problems));
  const serverUserData = renderServerSeedFiles(server.config, { authorizedKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFixture user'], hostKey: { privateKey: 'k', publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFixture host' }, placeholderTls: { certPem: 'c', keyPem: 'k' }, registries: material })['user-data'];
  const serverFiles = Object.values(readSeedUserData(serverUserData).files);
  t.deepEqual(serverFiles.filter((f) => f.path.startsWith(CONTAINERD_CERTS_DIR) || f.path === GUEST_PATHS.kubeletRegistryAuth).map((f) => `${f.permissions} ${f.path}`), files.map((f) => `${f.permissions} ${f.path}`));

  // lab:render: where each value comes from, not the value.
  const rendered = planRenderedLab(parsed.config).seed['user-data'];
  t.regex(rendered, /<CA certificate of registry\.example\.com:5000, read from \/etc\/ca\.crt at lab:up>/);
  t.regex(rendered, /<base64 user:password for registry\.example\.com:5000 \(user \\?"ci\\?", password from \$REG_PASSWORD\), read at lab:up>/);
  t.false(rendered.includes(auth));
});

const criReason = notRoot() ?? missingCommand('containerd', 'ctr', 'docker-registry', 'skopeo', 'openssl', 'htpasswd', 'ip');

/**
 * containerd talks plain HTTP to loopback registries that have no hosts.toml, so the registry gets
 * an ordinary (documentation) address, on the loopback device of a network namespace of its own (no route out), where
 * the registry, skopeo and containerd run. containerd's socket is a file, reached from here.
 */
const NETNS_ADDRESS = '192.0.2.10';
async function withRegistryNetns<T>(body: (exec: string[]) => Promise<T>): Promise<T> {
  const name = `labsmith-reg-${process.pid}`;
  await run('ip', ['netns', 'del', name], { allowFailure: true });
  await run('ip', ['netns', 'add', name]);
  try {
    for (const args of [['link', 'set', 'lo', 'up'], ['addr', 'add', `${NETNS_ADDRESS}/32`, 'dev', 'lo']]) await run('ip', ['-n', name, ...args]);
    return await body(['ip', 'netns', 'exec', name, 'nice', '-n', '19']);
  } finally {
    await run('ip', ['netns', 'del', name], { allowFailure: true });
  }
}

/** Debian's containerd 1.7 with the image's own config (CRI on, config_path), its certs.d under `certsDir`. */
async function withCriContainerd(exec: string[], dir: string, certsDir: string, body: (socket: string) => Promise<void>): Promise<void> {
  const socket = join(dir, 'containerd.sock');
  const config = join(dir, 'containerd.toml');
  await mkdir(dir, { recursive: true });
  const image = renderContainerdConfig({ kubernetesVersion: '1.37' });
  const configPath = `config_path = "${CONTAINERD_CERTS_DIR}"`;
  if (!image.includes(configPath)) throw new Error(`the image's containerd config no longer has ${configPath}`);
  // The image's file as it is, with the test's paths: its own root, state, socket and certs.d.
  const file = `root = "${dir}/root"\nstate = "${dir}/state"\n${image.replace(configPath, `config_path = "${certsDir}"`)}\n[grpc]\n  address = "${socket}"\n`;
  await writeFile(config, file);
  const parsed = parseToml(file) as Record<string, any>;
  if (parsed.version !== 2 || parsed.plugins['io.containerd.grpc.v1.cri'].registry.config_path !== certsDir) throw new Error(`the test's containerd config is not the image's: ${file}`);
  const daemon = spawn(exec[0]!, [...exec.slice(1), 'containerd', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  daemon.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  try {
    for (let i = 0; i < 150 && !existsSync(socket); i++) await sleep(100);
    await run('ctr', ['--address', socket, 'version'], { timeoutMs: 20_000 });
    await body(socket);
  } catch (error) {
    throw new Error(`${(error as Error).message}\ncontainerd log (tail): ${log.split('\n').slice(-15).join('\n')}`);
  } finally {
    daemon.kill('SIGTERM');
    await new Promise((resolve) => daemon.once('exit', resolve));
  }
}

testUnless(criReason, "containerd 1.7 pulls through the CRI with the written hosts.toml, CA and keyring credentials, without a restart; a mirror too; skopeo on the host is told where its own CA and login go", async (t) => {
  t.timeout(5 * 60_000);
  await withTempDir((dir) => withRegistryNetns(async (exec) => {
    const ca = await ensureLabCa(dir, 'registry');
    const tls = await issueServerCertificate(ca, dir, 'registry', { dnsNames: ['registry.labsmith.test'], ipAddresses: [NETNS_ADDRESS] });
    await writeFile(join(dir, 'tls.crt'), tls.certPem);
    await writeFile(join(dir, 'tls.key'), tls.keyPem);
    const password = 'pw-for-the-test-registry';
    await writeFile(join(dir, 'htpasswd'), (await run('htpasswd', ['-Bbn', 'ci', password])).stdout);
    const port = 5443;
    const host = `${NETNS_ADDRESS}:${port}`;
    await writeFile(
      join(dir, 'config.yml'),
      `version: 0.1\nlog: { level: error }\nstorage: { filesystem: { rootdirectory: ${join(dir, 'storage')} } }\nhttp: { addr: "${host}", tls: { certificate: ${join(dir, 'tls.crt')}, key: ${join(dir, 'tls.key')} } }\nauth: { htpasswd: { realm: labsmith-test, path: ${join(dir, 'htpasswd')} } }\n`,
    );
    const registry = spawn(exec[0]!, [...exec.slice(1), 'docker-registry', 'serve', join(dir, 'config.yml')], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 50 && (await run(exec[0]!, [...exec.slice(1), 'bash', '-c', `exec 3<>/dev/tcp/${NETNS_ADDRESS}/${port}`], { allowFailure: true })).exitCode !== 0; i++) await sleep(200);
      const { layout, manifestDigest } = await buildOciLayout(join(dir, 'build'), '1.0');
      const ref = `${host}/tests/hello:1.0`;
      await run(exec[0]!, [...exec.slice(1), 'env', `SSL_CERT_FILE=${ca.certPath}`, 'skopeo', 'copy', '--quiet', '--dest-creds', `ci:${password}`, `oci:${layout}:1.0`, `docker://${ref}`]);

      // image:lock from this host: skopeo's real refusals (no CA, then no credentials) say where skopeo looks.
      const inspect = (env: string[]) => run(exec[0]!, [...exec.slice(1), 'env', ...env, 'skopeo', 'inspect', '--raw', `docker://${ref}`], { allowFailure: true });
      const untrustedHere = skopeoFailure(`docker://${ref}`, (await inspect([])).stderr, 'inspect');
      t.regex(untrustedHere.hint ?? '', new RegExp(`/etc/containers/certs\\.d/${host.replace(/\./g, '\\.')}/ca\\.crt`), untrustedHere.message);
      const anonymousHere = skopeoFailure(`docker://${ref}`, (await inspect([`SSL_CERT_FILE=${ca.certPath}`, `REGISTRY_AUTH_FILE=${join(dir, 'none.json')}`])).stderr, 'inspect');
      t.regex(anonymousHere.hint ?? '', new RegExp(`skopeo login ${host.replace(/\./g, '\\.')}`), anonymousHere.message);
      t.false(untrustedHere instanceof UnreachableError || anonymousHere instanceof UnreachableError, 'reached, but refused: not an offline skip');

      const material = await readRegistryMaterial(
        [{ host, ca: ca.certPath, mirrorOf: 'mirrored.labsmith.invalid', credentials: { username: 'ci', password: { env: 'LABSMITH_T_REGISTRY_PASSWORD' } } }],
        { LABSMITH_T_REGISTRY_PASSWORD: password },
      );
      const certsDir = join(dir, 'certs.d');
      await mkdir(certsDir);
      await withCriContainerd(exec, join(dir, 'containerd'), certsDir, async (socket) => {
        // The kubelet's view: the credentials it finds in its keyring file for the image's registry.
        const keyring = JSON.parse(renderKubeletRegistryAuth(material)!) as { auths: Record<string, { auth: string }> };
        const fromKeyring = (registry: string) => {
          const [username, ...rest] = Buffer.from(keyring.auths[registry]!.auth, 'base64').toString().split(':');
          return { username, password: rest.join(':') };
        };

        const untrusted = await t.throwsAsync(criPullImage(socket, ref, fromKeyring(host)));
        t.regex(untrusted!.message, /x509|certificate signed by unknown authority|tls: failed to verify/, 'before hosts.toml: the registry CA is not trusted');

        // Written while containerd runs, as cloud-init writes them: no restart.
        for (const f of renderRegistryFiles(material)) {
          if (!f.path.startsWith(CONTAINERD_CERTS_DIR)) continue;
          const path = join(certsDir, f.path.slice(CONTAINERD_CERTS_DIR.length));
          await mkdir(dirname(path), { recursive: true });
          await writeFile(path, f.content.replaceAll(CONTAINERD_CERTS_DIR, certsDir));
          await chmod(path, Number.parseInt(f.permissions, 8));
        }
        const anonymous = await t.throwsAsync(criPullImage(socket, ref));
        t.regex(anonymous!.message, /401|unauthorized/i, 'the CA verifies now; without credentials the registry refuses');
        const wrong = await t.throwsAsync(criPullImage(socket, ref, { username: 'ci', password: 'wrong' }));
        t.regex(wrong!.message, /401|unauthorized/i);

        const pulled = await criPullImage(socket, ref, fromKeyring(host));
        t.regex(pulled, /^sha256:[0-9a-f]{64}$/, 'pulled through the CRI with the keyring credentials');
        // As the kubelet would send them for the mirrored name: the keyring files them under it too.
        const viaMirror = await criPullImage(socket, 'mirrored.labsmith.invalid/tests/hello:1.0', fromKeyring('mirrored.labsmith.invalid'));
        t.is(viaMirror, pulled, 'the mirrored name resolved through the mirror (its own registry does not exist)');
        const ls = await run('ctr', ['--address', socket, '--namespace', 'k8s.io', 'images', 'ls']);
        for (const name of [ref, 'mirrored.labsmith.invalid/tests/hello:1.0']) {
          const line = ls.stdout.split('\n').find((l) => l.startsWith(`${name} `));
          t.truthy(line?.includes(manifestDigest), `${name} in k8s.io with the pushed manifest digest: ${ls.stdout}`);
        }
      });
      t.is((await stat(join(certsDir, `${host}/hosts.toml`))).mode & 0o777, 0o644);
      t.is((await readFile(join(certsDir, `${host}/ca.crt`), 'utf8')).trim(), ca.certPem.trim());
    } finally {
      registry.kill();
      await new Promise((r) => registry.once('exit', r));
    }
  }));
});

test('workload images: baked with the cluster images (one list, normalized), each named by field when the lock lacks it or it has no tag', async (t) => {
  const parsed = parseLabConfig('workloads:\n  - { path: mail, images: [registry.example.com:5000/mail/postfix:3.9, "nginx:1.27"] }\n  - { path: web, images: ["nginx:1.27", "ghcr.example.org/a/web:2"] }\n', NEUTRAL_HOST, '/state');
  if (!parsed.ok) return t.fail(JSON.stringify(parsed.problems));
  const wanted = workloadImages(parsed.config);
  t.deepEqual(wanted, ['registry.example.com:5000/mail/postfix:3.9', 'docker.io/library/nginx:1.27', 'docker.io/library/nginx:1.27', 'ghcr.example.org/a/web:2']);
  const all = clusterImages(['registry.k8s.io/pause:3.10.1'], [], wanted);
  for (const ref of ['registry.k8s.io/pause:3.10.1', 'docker.io/library/nginx:1.27', 'registry.example.com:5000/mail/postfix:3.9', 'ghcr.example.org/a/web:2']) t.true(all.includes(ref), ref);
  t.is(all.filter((r) => r === 'docker.io/library/nginx:1.27').length, 1, 'once, however many sources use it');
  t.deepEqual(workloadImagesMissingFromLock(parsed.config, all), []);
  t.deepEqual(workloadImagesMissingFromLock(parsed.config, ['docker.io/library/nginx:1.27']), ['workloads.0.images.0: registry.example.com:5000/mail/postfix:3.9 is not in the lock', 'workloads.1.images.1: ghcr.example.org/a/web:2 is not in the lock']);

  t.deepEqual(problemsOf(`workloads:\n  - { path: a, images: [nginx, "registry.example.com:5000/x", "nginx@sha256:${'a'.repeat(64)}"] }\n`), [
    'workloads.0.images.0: "nginx" has no tag: write the tag your manifests use, e.g. "nginx:1.0" (an implicit :latest cannot be locked)',
    'workloads.0.images.1: "registry.example.com:5000/x" has no tag: write the tag your manifests use, e.g. "registry.example.com:5000/x:1.0" (an implicit :latest cannot be locked)',
    `workloads.0.images.2: "nginx@sha256:${'a'.repeat(64)}" names a digest: write the tag your manifests use (image:lock records its digest)`,
  ]);

  // A Kubernetes build from a lock without them stops before anything is built, naming each.
  await withTempDir(async (dir) => {
    const lock = JSON.parse(await readFile('image.lock.json', 'utf8')) as { images: Record<string, unknown> };
    lock.images = { 'docker.io/library/nginx:1.27': { digest: `sha256:${'b'.repeat(64)}`, amd64: `sha256:${'b'.repeat(64)}` } };
    await writeFile(join(dir, 'lock.json'), JSON.stringify(lock));
    const error = await t.throwsAsync(loadImageSource(parsed.config, { lock: join(dir, 'lock.json') }));
    t.true(error instanceof LabError);
    t.regex(error!.message, /does not pin every workload image:\n  - workloads\.0\.images\.0: registry\.example\.com:5000\/mail\/postfix:3\.9 is not in the lock\n  - workloads\.1\.images\.1: ghcr\.example\.org\/a\/web:2 is not in the lock$/);
    t.regex((error as LabError).hint ?? '', /image:lock -- --only images/);
    t.false((await loadImageSource(parsed.config, { lock: join(dir, 'lock.json'), 'os-only': true })).kubernetes, 'an OS-only build bakes no images and needs none');
  });
});

