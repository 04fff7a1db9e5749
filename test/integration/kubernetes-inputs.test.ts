/**
 * Where pkgs.k8s.io is unreachable (as here), a Kubernetes image build builds and caches the OS
 * layers, then stops at the first locked input it cannot fetch, naming its URL and the way to
 * build offline. The lock is complete but for inputs that are never fetched (their checksums
 * are placeholders: the build stops before any byte of them arrives).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UnreachableError } from '../../core/download.ts';
import { Progress } from '../../core/progress.ts';
import { buildImage } from '../../images/build.ts';
import { KUBERNETES_PACKAGES, kubernetesRepository } from '../../images/kubernetes/repository.ts';
import { osOnlySourceAtMirrorHead } from '../../images/source.ts';
import { run } from '../../core/exec.ts';
import { readTar } from '../../core/tar.ts';
import { parseDpkgStatus } from '../../images/manifest.ts';
import { renderMmdebstrapArgs } from '../../images/mmdebstrap.ts';
import { aptSources } from '../../images/recipe.ts';
import { fillDefaults } from '../../config/defaults.ts';
import { makeDeb } from '../fixtures/apt-repo.ts';
import { missingCommand, notRoot, tcpProbe, testUnless, throwawayLabConfig, withTempDir, worldFact } from '../helpers.ts';

const PKGS = 'pkgs.k8s.io';
const reachable = async () => (await tcpProbe(PKGS, 443, 5000).catch(() => 'error')) === 'connected';
const reason = notRoot() ?? missingCommand('mmdebstrap') ?? ((await reachable()) ? worldFact(`${PKGS} is reachable here: the offline stop cannot be shown`) : undefined);

testUnless(reason, 'a Kubernetes build where pkgs.k8s.io is unreachable: OS layers built and cached, then a clear stop naming the URL', async (t) => {
  t.timeout(40 * 60_000);
  await withTempDir(async (dir) => {
    const config = await throwawayLabConfig('it-k8s', dir);
    const base = await osOnlySourceAtMirrorHead(config);
    const repository = kubernetesRepository(config.kubernetes.version);
    const lock = structuredClone(base.lock);
    lock.kubernetes.keyring.sha256 = '0'.repeat(64);
    for (const p of KUBERNETES_PACKAGES) lock.kubernetes.packages[p] = { version: '1.37.0-1.1', url: `${repository}amd64/${p}_1.37.0-1.1_amd64.deb`, sha256: '1'.repeat(64) };
    for (const m of Object.values(lock.manifests)) m.sha256 ??= '2'.repeat(64);
    lock.images['registry.k8s.io/pause:3.10.1'] = { digest: `sha256:${'3'.repeat(64)}`, amd64: `sha256:${'4'.repeat(64)}` };
    const lines: string[] = [];
    const progress = new Progress('plain', (l) => lines.push(l));
    const error = await t.throwsAsync(buildImage({ debian: config.debian, source: { ...base, lock, kubernetes: true }, progress }));
    t.true((error as { cause?: unknown }).cause instanceof UnreachableError, error?.message);
    t.regex(error!.message, /Fetching Kubernetes inputs failed: cannot reach https:\/\/pkgs\.k8s\.io\/core:\/stable:\/v1\.37\/deb\/Release\.key/);
    t.regex((error as { hint?: string }).hint ?? '', /image:fetch-artifacts -- --out DIR.*--artifacts DIR/);
    t.true(lines.some((l) => /✓ Building OS layer/.test(l)), 'the OS layer was built (or reused) first');
    t.false(lines.some((l) => /Building Kubernetes layer|Building disk image/.test(l)), 'nothing after the stop');
    // The OS layers are complete in the cache: an OS-only build right after reuses them.
    const osOnly = await buildImage({ debian: config.debian, source: base, progress: new Progress('plain', () => undefined) });
    t.true(osOnly.cacheHits.tools && osOnly.cacheHits.rootfs, JSON.stringify(osOnly.cacheHits));
    t.true(existsSync(osOnly.disk));
  });
}, { serial: true });

testUnless(notRoot() ?? missingCommand('mmdebstrap', 'dpkg-deb'), 'locked .deb files install through mmdebstrap with their Debian dependencies, and leave no trace of their path', async (t) => {
  t.timeout(20 * 60_000);
  await withTempDir(async (dir) => {
    // A package of our own (not a Kubernetes stand-in): it depends on socat, which must come from Debian.
    const deb = await makeDeb(join(dir, 'debs'), 'labsmith-probe', '1.0-1', 'socat');
    const config = fillDefaults({}, dir);
    const args = renderMmdebstrapArgs({ variant: 'apt', format: 'tar', packages: ['ca-certificates', deb], sources: aptSources(config.debian).slice(0, 1), output: join(dir, 'rootfs.tar') });
    await run('mmdebstrap', args, { timeoutMs: 15 * 60_000 });
    const entries = await readTar(join(dir, 'rootfs.tar'), { readContent: (p) => p === 'var/lib/dpkg/status' });
    const status = parseDpkgStatus(entries.find((e) => e.path === 'var/lib/dpkg/status')!.content!.toString());
    t.truthy(status.find((p) => p.name === 'labsmith-probe' && p.version === '1.0-1'));
    t.truthy(status.find((p) => p.name === 'socat'), 'its dependency came from the Debian mirror');
    t.false(entries.some((e) => e.path.includes(dir.replace(/^\//, ''))), 'the bind-mounted path is gone from the tree');
  });
}, { serial: true });
