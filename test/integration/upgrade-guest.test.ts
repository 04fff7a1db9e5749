/**
 * The upgrade rehearsal's guest steps for real, in ONE OS-only lab boot (plus its restarts): an
 * OCI fixture image imported into containerd 1.7's k8s.io namespace and pinned, the same image
 * loaded into Docker, a canary file written; the VM shut down and its disk snapshotted (the
 * rollback point); started again; containerd moved to Debian forky's 2.x from the pinned .deb
 * (migrateContainerdInGuest), every claim of its report read again over SSH; then the canary
 * changed, the VM stopped, rolled back to the snapshot and started: the canary is as before,
 * containerd is 1.7 again with the image still pinned, and the guest answers. No Kubernetes runs.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../core/exec.ts';
import { LAB_FILES } from '../../core/paths.ts';
import { Progress } from '../../core/progress.ts';
import { osOnlySourceAtMirrorHead } from '../../images/source.ts';
import { fileToRemote, remoteForLab, remoteRun, type RemoteHost } from '../../lab/backup/remote.ts';
import { labDown } from '../../lab/down.ts';
import { QemuDriver } from '../../lab/drivers/qemu.ts';
import { labUp } from '../../lab/up.ts';
import { GUEST_MIGRATION_PATHS, migrateContainerdInGuest, parseCtrImages, readConfigKeys } from '../../lab/upgrade/containerd-migration.ts';
import { gatherUpgradeFacts, type NodeFacts } from '../../lab/upgrade/facts.ts';
import { fetchPinnedDebs, readIndexedDeb } from '../../lab/upgrade/pinned-debs.ts';
import { runUpgradePrechecks } from '../../lab/upgrade/plan.ts';
import { checkContainerd } from '../../lab/upgrade/prechecks.ts';
import { createSnapshot, listSnapshots, rollBackToSnapshot } from '../../lab/upgrade/snapshot.ts';
import { shutDownLabVm, startLabVmAgain } from '../../lab/upgrade/vm-power.ts';
import { buildOciLayout, ociArchiveFromLayout } from '../fixtures/oci.ts';
import { STATIC_HELLO_OUTPUT } from '../fixtures/static-hello.ts';
import { missingCommand, notRoot, qemuProcessesUnder, testUnless, throwawayLabConfig, withTempDir } from '../helpers.ts';

const reason = notRoot() ?? missingCommand('mmdebstrap', 'qemu-system-x86_64', 'qemu-img', 'xorriso', 'ssh', 'openssl', 'skopeo', 'apt-get', 'dpkg-deb');

const IMAGE_REF = 'registry.labsmith.invalid/tests/hello:1.0';
const DOCKER_REF = 'registry.labsmith.invalid/tests/hello-docker:1.0';
const CANARY = '/var/lib/labsmith-rollback-canary';
const SNAPSHOT = 'before-containerd-2';
const s = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

const dockerApi = ['sudo', 'curl', '-sS', '--fail-with-body', '--max-time', '300', '--unix-socket', '/run/docker.sock'];

async function sh(remote: RemoteHost, argv: string[], input?: string) {
  return remoteRun(remote, argv, { allowFailure: true, timeoutMs: 360_000, input });
}

testUnless(reason, 'containerd 1.7 → 2 in an OS-only guest (image kept and pinned, ctr run, docker verdict), then a real rollback to the disk snapshot taken before it', async (t) => {
  t.timeout(120 * 60_000);
  await withTempDir(async (dir) => {
    // A direct boot (no initramfs, NVMe) here, UEFI in the lab test: both paths boot in CI, and the
    // restarts from the recorded qemu argv keep the direct boot's kernel and disks.
    const config = await throwawayLabConfig('it-upgrade', dir, 'vm: { boot: direct }\n');
    const driver = new QemuDriver();
    const progress = new Progress('plain', (line) => process.stderr.write(`[it-upgrade] ${line}`));
    const figures: string[] = [];

    // Host side first (no VM yet): the pin as a lock refresh reads it from forky's signed index, the .deb fetched and checked against it.
    const pin = await readIndexedDeb('forky', 'containerd');
    t.regex(pin.version, /^2\.\d+\.\d+/, 'forky carries containerd 2');
    const debs = await fetchPinnedDebs({ pins: [pin], outDir: join(dir, 'debs') });
    t.is(debs.length, 1);
    const { layout, manifestDigest } = await buildOciLayout(join(dir, 'oci'), '1.0', { runnable: true });
    const ociArchive = join(dir, 'hello.oci.tar');
    await ociArchiveFromLayout(layout, '1.0', IMAGE_REF, ociArchive);
    const dockerArchive = join(dir, 'hello.docker.tar');
    await run('skopeo', ['copy', '--quiet', `oci:${layout}:1.0`, `docker-archive:${dockerArchive}:${DOCKER_REF}`]);

    try {
      const up = await labUp({ config, driver, source: await osOnlySourceAtMirrorHead(config), progress, failedLogsDir: join(dir, 'failed') });
      t.deepEqual(up.checks.filter((c) => !c.ok).map((c) => c.id), []);
      let state = up.state;
      const stateDir = config.stateDir;
      const overlay = join(stateDir, LAB_FILES.overlay);
      const remote = remoteForLab(stateDir, config.ssh.user, driver.sshEndpoint(state));
      t.truthy(state.qemuArgs?.length, 'the state records the qemu argv for a restart');
      t.true(state.qemuArgs!.includes('-kernel') && !state.qemuArgs!.includes('-initrd') && state.qemuArgs!.includes('nvme,serial=labsmith-root,drive=root'), 'a direct boot: the kernel without an initramfs, root on NVMe');
      const root = await remoteRun(remoteForLab(stateDir, config.ssh.user, driver.sshEndpoint(state)), ['findmnt', '-n', '-o', 'SOURCE', '/'], { allowFailure: true });
      t.regex(root.stdout.trim(), /^\/dev\/nvme\dn1p2$/, 'root mounted by the kernel from NVMe');

      // Before: the fixture in containerd 1.7's k8s.io namespace, pinned; the same image in Docker's own store; a canary.
      await fileToRemote(remote, ociArchive, ['dd', 'of=/tmp/hello.oci.tar', 'status=none']);
      await fileToRemote(remote, dockerArchive, ['dd', 'of=/tmp/hello.docker.tar', 'status=none']);
      t.is((await sh(remote, ['sudo', 'ctr', '-n', 'k8s.io', 'images', 'import', '/tmp/hello.oci.tar'])).exitCode, 0);
      t.is((await sh(remote, ['sudo', 'ctr', '-n', 'k8s.io', 'images', 'label', IMAGE_REF, 'io.cri-containerd.pinned=pinned'])).exitCode, 0);
      // The image has the docker command (docker-cli: trixie's docker.io only recommends it); the test drives Docker's Engine API on its socket with curl, as the migration's report does.
      t.regex((await sh(remote, ['sudo', 'docker', 'version', '--format', '{{.Client.Version}} {{.Server.Version}}'])).stdout, /^\d+\.\d+\.\d+\S* \d+\.\d+\.\d+/, 'the docker command reaches dockerd');
      const loaded = await sh(remote, [...dockerApi, '-X', 'POST', '-H', 'Content-Type: application/x-tar', '--data-binary', '@/tmp/hello.docker.tar', 'http://localhost/images/load']);
      t.is(loaded.exitCode, 0, loaded.stdout + loaded.stderr);
      t.regex((await sh(remote, [...dockerApi, `http://localhost/images/${DOCKER_REF}/json`])).stdout, /"Id":"sha256:/, 'docker has the fixture');
      t.is((await sh(remote, ['sudo', 'dd', `of=${CANARY}`, 'status=none'], 'before the upgrade\n')).exitCode, 0);
      const version17 = (await sh(remote, ['dpkg-query', '-W', '-f', '${Version}', 'containerd'])).stdout;
      t.regex(version17, /^1\.7\./, 'the image carries containerd 1.7');

      // lab:upgrade's facts, gathered over SSH from this guest, and its pre-checks on them: no cluster, and containerd below 1.38's floor.
      const factsBefore = await gatherUpgradeFacts(remote, config.addons.storageDir);
      t.regex(factsBefore.containerdVersion, /\b1\.7\.\d+/);
      t.like(factsBefore.containerdImages.find((i) => i.ref === IMAGE_REF), { digest: manifestDigest, labels: { 'io.cri-containerd.pinned': 'pinned' } });
      t.true((factsBefore.freeBytes['/'] ?? 0) > 1e9, `free bytes on /: ${factsBefore.freeBytes['/']}`);
      t.true('missing' in factsBefore.cluster, 'an OS-only guest has no cluster facts');
      const precheckIds = (facts: NodeFacts) => runUpgradePrechecks({ targetMinor: '1.38', currentAddons: {}, facts, workloadManifests: [], storageDir: config.addons.storageDir, labName: config.name, snapshotTag: SNAPSHOT }).map((p) => p.check);
      t.true(precheckIds(factsBefore).includes('cluster') && precheckIds(factsBefore).includes('inputs'));
      t.true(checkContainerd(factsBefore.containerdVersion, '1.38').length > 0, "containerd 1.7 is below 1.38's floor");

      // The rollback point: clean shutdown, snapshot with the VM stopped, start again.
      const off1 = await shutDownLabVm({ driver, state, stateDir, remote });
      await t.throwsAsync(rollBackToSnapshot(overlay, SNAPSHOT), { message: /has no snapshot named/ });
      await createSnapshot(overlay, SNAPSHOT);
      t.deepEqual((await listSnapshots(overlay)).map((x) => x.tag), [SNAPSHOT]);
      const on1 = await startLabVmAgain({ driver, state, stateDir, remote });
      state = on1.state;
      figures.push(`shutdown ${s(off1.durationMs)}, restart to SSH ${s(on1.durationMs)}`);
      progress.info(`rollback point: ${figures.at(-1)}`);
      await t.throwsAsync(createSnapshot(overlay, 'while-running'), { message: /in use|already has/ }, 'a running VM holds the disk lock: no snapshot of a live disk');

      // The move to containerd 2.
      const report = await migrateContainerdInGuest({
        remote, debs, kubernetesVersion: '1.38', progress,
        pins: [pin],
        ctrRun: { image: IMAGE_REF, command: ['/hello'] },
        dockerImage: DOCKER_REF,
      });
      t.log(JSON.stringify({ timings: report.timings, migrate: report.migrateComparison.differences, docker: { verdict: report.docker.verdict, detail: report.docker.detail } }, null, 2));
      t.regex(report.before.packageVersion, /^1\.7\./);
      t.is(report.after.packageVersion, pin.version);
      t.regex(report.after.containerd, /\b2\.\d+\.\d+/);
      t.deepEqual(report.configDump.checks.filter((c) => !c.ok).map((c) => `${c.what}: ${c.detail}`), []);
      t.true(report.configDump.criPluginsOk);
      const beforeRow = report.before.images.find((i) => i.ref === IMAGE_REF);
      t.true(beforeRow?.pinned, 'the fixture was pinned before the move');
      t.is(beforeRow?.digest, manifestDigest);
      t.deepEqual(report.imagesKept.filter((c) => !c.ok).map((c) => `${c.what}: ${c.detail}`), []);
      t.true(report.imagesKept.some((c) => c.what.startsWith(IMAGE_REF)));
      t.deepEqual(report.migrateComparison.differences, [], 'containerd config migrate of the 1.7 file and our version 3 file agree on every kubelet key');
      t.true(report.ctrRun.ok, `${report.ctrRun.output} ${report.ctrRun.stderr}`);
      t.is(report.ctrRun.output, STATIC_HELLO_OUTPUT.trim());
      t.true(report.timings.length >= 10 && report.timings.every((x) => x.durationMs >= 0));

      const factsAfter = await gatherUpgradeFacts(remote, config.addons.storageDir);
      t.deepEqual(checkContainerd(factsAfter.containerdVersion, '1.38'), [], `containerd ${factsAfter.containerdVersion} meets 1.38's floor`);

      // The same claims, read again from the guest.
      t.regex((await sh(remote, ['containerd', '--version'])).stdout, /\b2\.\d+\.\d+/);
      t.is((await sh(remote, ['dpkg-query', '-W', '-f', '${Version}', 'containerd'])).stdout, pin.version);
      t.is((await sh(remote, ['systemctl', 'is-active', 'containerd'])).stdout, 'active');
      const prefs = (await sh(remote, ['cat', GUEST_MIGRATION_PATHS.aptPreferences])).stdout;
      t.is(prefs, `Package: containerd\nPin: version ${pin.version}\nPin-Priority: 1001`);
      t.regex((await sh(remote, ['apt-cache', 'policy', 'containerd'])).stdout, new RegExp(`\\*\\*\\* ${pin.version.replace(/[.+~]/g, '\\$&')} 1001`), 'apt sees the installed version at the pin\'s priority');
      const dump = readConfigKeys((await sh(remote, ['sudo', 'containerd', 'config', 'dump'])).stdout);
      t.like(dump, { version: 3, sandbox: 'registry.k8s.io/pause:3.10.1', systemdCgroup: true, cniBinDirs: ['/opt/cni/bin'] });
      const rows = parseCtrImages((await sh(remote, ['sudo', 'ctr', '-n', 'k8s.io', 'images', 'ls'])).stdout);
      t.like(rows.find((r) => r.ref === IMAGE_REF), { digest: manifestDigest, pinned: true });
      const ctrAgain = await sh(remote, ['sudo', 'ctr', '-n', 'k8s.io', 'run', '--rm', IMAGE_REF, 'it-probe-2', '/hello']);
      t.is(ctrAgain.stdout, STATIC_HELLO_OUTPUT.trim(), ctrAgain.stderr);
      const dockerInfo = await sh(remote, [...dockerApi, 'http://localhost/info']);
      const dockerVersion = await sh(remote, [...dockerApi, 'http://localhost/version']);
      t.is(dockerInfo.exitCode === 0, report.docker.after.info.ok, 'the report says what docker info does');
      t.is(report.docker.verdict === 'works', report.docker.after.info.ok && report.docker.after.run?.ok === true);
      if (report.docker.after.run?.ok) t.true(report.docker.after.run.output.includes(STATIC_HELLO_OUTPUT.trim()), 'docker ran the fixture on containerd 2');
      t.log(`docker after the move: ${report.docker.verdict}: ${report.docker.detail}; /version: ${dockerVersion.stdout.slice(0, 600)}`);

      // The real rollback: change the canary, stop, roll back, start.
      t.is((await sh(remote, ['sudo', 'dd', `of=${CANARY}`, 'status=none'], 'after the upgrade\n')).exitCode, 0);
      const off2 = await shutDownLabVm({ driver, state, stateDir, remote });
      await rollBackToSnapshot(overlay, SNAPSHOT);
      const on2 = await startLabVmAgain({ driver, state, stateDir, remote });
      state = on2.state;
      figures.push(`shutdown ${s(off2.durationMs)}, restart after rollback to SSH ${s(on2.durationMs)}`);
      progress.info(`rollback: ${figures.at(-1)}`);
      t.is((await sh(remote, ['sudo', 'cat', CANARY])).stdout, 'before the upgrade', 'the canary is as it was at the snapshot');
      t.is((await sh(remote, ['dpkg-query', '-W', '-f', '${Version}', 'containerd'])).stdout, version17, 'containerd is 1.7 again');
      t.regex((await sh(remote, ['containerd', '--version'])).stdout, /\b1\.7\.\d+/);
      t.is((await sh(remote, ['test', '-e', GUEST_MIGRATION_PATHS.aptPreferences])).exitCode, 1, 'the apt preference is gone with the rollback');
      const activeAfter = await sh(remote, ['sh', '-c', 'for i in $(seq 60); do systemctl is-active -q containerd && break; sleep 2; done; systemctl is-active containerd']);
      t.is(activeAfter.stdout, 'active');
      t.like(parseCtrImages((await sh(remote, ['sudo', 'ctr', '-n', 'k8s.io', 'images', 'ls'])).stdout).find((r) => r.ref === IMAGE_REF), { digest: manifestDigest, pinned: true });
      const ci = await sh(remote, ['cloud-init', 'status', '--wait']);
      t.true(ci.exitCode === 0 || ci.exitCode === 2, `cloud-init after the rollback boot: ${ci.stdout}`);
      t.log(`timings: ${report.timings.map((x) => `${x.step} ${s(x.durationMs)}`).join('; ')}`);
      t.log(`power: ${figures.join('; ')}`);
      // Last, so a Docker failure never hides the rollback's verdict (an assertion that fails ends the test).
      t.true(report.docker.before.info.ok && report.docker.before.run?.ok === true, `docker worked before the move: ${JSON.stringify(report.docker.before)}`);
      t.true(report.docker.before.run?.output.includes(STATIC_HELLO_OUTPUT.trim()), 'docker ran the fixture on containerd 1.7');
      t.is(report.docker.verdict, 'works', report.docker.detail);
    } finally {
      await labDown({ config, progress });
    }
    t.is(await qemuProcessesUnder(dir), 0, 'no qemu is left');
    t.false(existsSync(config.stateDir), 'the lab directory is gone');
  });
}, { serial: true });
