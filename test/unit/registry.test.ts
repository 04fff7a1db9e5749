/**
 * Image digests and archives against a real registry (Debian's docker-registry) on loopback
 * over TLS with a CA the test makes: what image:lock records and what image:fetch-artifacts
 * copies, with the image built by the test from a tiny rootfs.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UnreachableError } from '../../core/download.ts';
import { run } from '../../core/exec.ts';
import { sha256 } from '../../core/hash.ts';
import { sleep } from '../../core/sleep.ts';
import { fetchImageArchive, ociArchiveDigest } from '../../images/artifacts/store.ts';
import { inspectImage, parseRawManifest } from '../../images/lock/refresh.ts';
import { freePort } from '../../lab/ports.ts';
import { ensureLabCa, issueServerCertificate } from '../../lab/secrets.ts';
import { buildOciLayout } from '../fixtures/oci.ts';
import { missingCommand, tcpProbe, testUnless, withTempDir } from '../helpers.ts';

test('a multi-platform index: its own digest, and the linux/amd64 manifest inside it', (t) => {
  const index = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'a'.repeat(64)}`, size: 1, platform: { os: 'linux', architecture: 'arm64' } },
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'b'.repeat(64)}`, size: 1, platform: { os: 'linux', architecture: 'amd64' } },
    ],
  });
  t.deepEqual(parseRawManifest(index), { digest: `sha256:${sha256(index)}`, amd64: `sha256:${'b'.repeat(64)}` });
  const single = JSON.stringify({ schemaVersion: 2, config: {}, layers: [] });
  t.deepEqual(parseRawManifest(single), { digest: `sha256:${sha256(single)}`, amd64: `sha256:${sha256(single)}` });
  t.is(parseRawManifest(JSON.stringify({ manifests: [{ digest: 'sha256:x', platform: { os: 'windows', architecture: 'amd64' } }] })).amd64, undefined);
});

testUnless(missingCommand('docker-registry', 'skopeo', 'openssl'), 'image:lock reads a digest from a registry and image:fetch-artifacts copies exactly that manifest; a registry that is down is named', async (t) => {
  await withTempDir(async (dir) => {
    const ca = await ensureLabCa(dir, 'registry');
    const tls = await issueServerCertificate(ca, dir, 'registry', { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    await writeFile(join(dir, 'tls.crt'), tls.certPem);
    await writeFile(join(dir, 'tls.key'), tls.keyPem);
    const port = await freePort();
    await writeFile(
      join(dir, 'config.yml'),
      `version: 0.1\nlog: { level: error }\nstorage: { filesystem: { rootdirectory: ${join(dir, 'storage')} } }\nhttp: { addr: "127.0.0.1:${port}", tls: { certificate: ${join(dir, 'tls.crt')}, key: ${join(dir, 'tls.key')} } }\n`,
    );
    // skopeo (Go) trusts the test CA through SSL_CERT_FILE, as it would a corporate CA.
    process.env.SSL_CERT_FILE = ca.certPath;
    const registry = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 50 && (await tcpProbe('127.0.0.1', port, 500)) !== 'connected'; i++) await sleep(200);
      const ref = `127.0.0.1:${port}/tests/hello:1.0`;
      const { layout } = await buildOciLayout(join(dir, 'build'), '1.0');
      await run('skopeo', ['copy', '--quiet', `oci:${layout}:1.0`, `docker://${ref}`]);

      const locked = await inspectImage(ref);
      t.regex(locked.digest, /^sha256:[0-9a-f]{64}$/);
      t.is(locked.amd64, locked.digest, 'a single-platform image is its own amd64 manifest');
      const archive = join(dir, 'hello.oci.tar');
      await fetchImageArchive(ref, locked, archive);
      t.is(await ociArchiveDigest(archive), locked.amd64, 'the archive holds the locked manifest');
      const inspected = await run('skopeo', ['inspect', '--raw', `oci-archive:${archive}`]);
      t.is(`sha256:${sha256(inspected.stdout)}`, locked.amd64);
    } finally {
      registry.kill();
      await new Promise((r) => registry.once('exit', r));
    }
    const down = await t.throwsAsync(fetchImageArchive(`127.0.0.1:${port}/tests/hello:1.0`, { digest: `sha256:${'c'.repeat(64)}`, amd64: `sha256:${'c'.repeat(64)}` }, join(dir, 'x.oci.tar')));
    t.true(down instanceof UnreachableError, down?.message);
    t.regex(down!.message, new RegExp(`cannot reach docker://127\\.0\\.0\\.1:${port}/tests/hello@sha256:c{64}`));
    delete process.env.SSL_CERT_FILE;
  });
});
