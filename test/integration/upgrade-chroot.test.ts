/**
 * No VM: the migration script's verify-debs, install and configure steps run in a chroot of the
 * image's own OS layer (Debian trixie with containerd 1.7.24 and docker.io), on forky's pinned
 * containerd 2 .deb: apt's plan touches only containerd, the install keeps our config until
 * configure replaces it, the apt preference holds the pinned version, and `containerd config
 * migrate` of the 1.7 file agrees with our version 3 file. Restart, ctr run and Docker need a
 * booted guest: upgrade-guest.test.ts.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { renderContainerdConfig } from '../../cloud-init/containerd-config.ts';
import { run } from '../../core/exec.ts';
import { IMAGE_FILES } from '../../core/paths.ts';
import { Progress } from '../../core/progress.ts';
import { buildImage } from '../../images/build.ts';
import { bootLayer } from '../../images/recipe.ts';
import { osOnlySourceAtMirrorHead } from '../../images/source.ts';
import { checkConfigDump, GUEST_MIGRATION_PATHS as P, MIGRATE_SCRIPT_SOURCE, compareConfigKeys, readConfigKeys, renderDebSums, renderMigrationParams } from '../../lab/upgrade/containerd-migration.ts';
import { renderContainerd2Config } from '../../lab/upgrade/containerd2-config.ts';
import { fetchPinnedDebs, readIndexedDeb } from '../../lab/upgrade/pinned-debs.ts';
import { REPO_ROOT } from '../../core/paths.ts';
import { sha256File } from '../../core/hash.ts';
import { missingCommand, notRoot, testUnless, throwawayLabConfig, withTempDir } from '../helpers.ts';

const reason = notRoot() ?? missingCommand('mmdebstrap', 'unshare', 'chroot', 'tar', 'apt-get', 'dpkg-deb');

testUnless(reason, 'in a chroot of the image\'s OS layer: verify-debs, install (only containerd moves) and configure, with config migrate agreeing with our version 3 file', async (t) => {
  t.timeout(60 * 60_000);
  await withTempDir(async (dir) => {
    const config = await throwawayLabConfig('it-chroot', dir);
    const progress = new Progress('plain', (line) => process.stderr.write(`[it-chroot] ${line}`));
    const image = await buildImage({ debian: config.debian, source: await osOnlySourceAtMirrorHead(config), progress });
    const pin = await readIndexedDeb('forky', 'containerd');
    const [deb] = await fetchPinnedDebs({ pins: [pin], outDir: join(dir, 'debs') });
    const root = join(dir, 'root');
    await mkdir(root);
    await run('tar', ['-xf', join(bootLayer(image.plan).dir, IMAGE_FILES.rootfsTar), '-C', root], { timeoutMs: 600_000 });
    const inRoot = (p: string) => join(root, p);
    // The mounts live in a private mount namespace: they go when its last process exits.
    const chroot = (argv: string[]) => run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'r=$1; shift; mount -t proc proc "$r/proc" && mount --bind /dev "$r/dev" && exec chroot "$r" "$@"', 'sh', root, ...argv], { allowFailure: true, timeoutMs: 600_000 });
    t.regex((await chroot(['dpkg-query', '-W', '-f', '${Version}', 'containerd'])).stdout, /^1\.7\./, 'the OS layer carries containerd 1.7');

    const facts = { file: deb!, package: pin.package, version: pin.version, sha256: await sha256File(deb!) };
    await mkdir(inRoot(P.debs), { recursive: true });
    await writeFile(join(inRoot(P.debs), basename(deb!)), await readFile(deb!));
    await writeFile(inRoot(P.sums), renderDebSums([facts]));
    await writeFile(inRoot(P.params), renderMigrationParams({ debs: [facts], containerd: facts }));
    const ours = renderContainerd2Config({ kubernetesVersion: '1.38' });
    await writeFile(inRoot(P.newConfig), ours);
    await writeFile(inRoot(P.script), await readFile(join(REPO_ROOT, MIGRATE_SCRIPT_SOURCE)));
    const step = (name: string) => chroot(['sh', P.script, P.params, name]);

    // A fixture .deb named like the pin that would take docker.io away: apt's plan is refused and nothing changes.
    const tree = join(dir, 'conflicting');
    await mkdir(join(tree, 'DEBIAN'), { recursive: true });
    await writeFile(join(tree, 'DEBIAN', 'control'), `Package: containerd\nVersion: ${pin.version}\nArchitecture: amd64\nConflicts: docker.io\nMaintainer: labsmith tests <tests@labsmith.invalid>\nDescription: fixture that conflicts with docker.io\n`);
    const fixtureDir = '/var/lib/labsmith/upgrade/fixture-debs';
    await mkdir(inRoot(fixtureDir), { recursive: true });
    await run('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', tree, join(inRoot(fixtureDir), 'containerd_fixture_amd64.deb')]);
    await writeFile(inRoot('/var/lib/labsmith/upgrade/fixture.env'), renderMigrationParams({ debs: [facts], containerd: facts }, { ...P, debs: fixtureDir }));
    const refused = await chroot(['sh', P.script, '/var/lib/labsmith/upgrade/fixture.env', 'install']);
    t.is(refused.exitCode, 1);
    t.regex(refused.stderr, /would also change other packages: Remv docker\.io;/);
    t.regex((await chroot(['dpkg-query', '-W', '-f', '${Package} ${Version}\n', 'containerd', 'docker.io'])).stdout, /^containerd 1\.7\.\S+\ndocker\.io 26\./, 'docker.io and containerd 1.7 are untouched');
    t.is((await chroot(['test', '-e', P.aptPreferences])).exitCode, 1, 'no apt preference is written for a refused plan');

    const verified = await step('verify-debs');
    t.is(verified.exitCode, 0, verified.stderr);
    t.is(verified.stdout, `verified containerd ${pin.version} (${basename(deb!)})`);
    const installed = await step('install');
    t.is(installed.exitCode, 0, installed.stderr + installed.stdout);
    t.regex(installed.stdout, /1 upgraded, 0 newly installed, 0 to remove/, 'apt changes containerd and nothing else');
    t.regex(installed.stdout, new RegExp(`installed containerd ${pin.version.replace(/[.+~]/g, '\\$&')}$`));
    t.is((await chroot(['dpkg-query', '-W', '-f', '${Version}', 'containerd'])).stdout, pin.version);
    t.regex((await chroot(['containerd', '--version'])).stdout, /\b2\.\d+\.\d+/);
    t.is(await readFile(inRoot(P.aptPreferences), 'utf8'), `Package: containerd\nPin: version ${pin.version}\nPin-Priority: 1001\n`);
    t.regex((await chroot(['apt-cache', 'policy', 'containerd'])).stdout, new RegExp(`\\*\\*\\* ${pin.version.replace(/[.+~]/g, '\\$&')} 1001`), 'apt holds the pinned version at priority 1001');
    t.is(await readFile(inRoot('etc/containerd/config.toml'), 'utf8'), renderContainerdConfig({}), 'the package kept our (1.7) config: configure replaces it');
    t.is(await readFile(inRoot(`${P.backup}/config.toml`), 'utf8'), renderContainerdConfig({}), 'the 1.7 config is backed up');

    const configured = await step('configure');
    t.is(configured.exitCode, 0, configured.stderr);
    t.is(await readFile(inRoot('etc/containerd/config.toml'), 'utf8'), ours);
    const differences = compareConfigKeys(readConfigKeys(ours), readConfigKeys(await readFile(inRoot(P.migrateOutput), 'utf8')));
    t.deepEqual(differences, [], 'containerd config migrate of the 1.7 file gives our kubelet keys');
    const dump = await chroot(['containerd', 'config', 'dump']);
    t.is(dump.exitCode, 0, dump.stderr);
    const checks = checkConfigDump(readConfigKeys(dump.stdout), 'io.containerd.cri.v1 images - ok\nio.containerd.cri.v1 runtime linux/amd64 ok', 'registry.k8s.io/pause:3.10.1').checks;
    t.deepEqual(checks.filter((c) => !c.ok && !c.what.includes('plugins loaded')).map((c) => `${c.what}: ${c.detail}`), [], 'the config containerd 2 would load (plugins need a running daemon: the guest test)');
  });
});
