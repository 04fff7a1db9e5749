import test from 'ava';
import { chmod, mkdir, open, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LabError } from '../../core/errors.ts';
import { sha256 } from '../../core/hash.ts';
import { HOST_TOOLS, renderAptInstallArgs, requireHostTools } from '../../core/host-tools.ts';
import { run } from '../../core/exec.ts';
import { ensureWritableDir } from '../../core/fs.ts';
import { verifyDiskLayer, writeDiskStamp } from '../../images/build.ts';
import { renderSha256Sums } from '../../images/manifest.ts';
import { renderPlaceholderScript } from '../../cloud-init/placeholder-ingress.ts';
import { parseLabConfig } from '../../config/load.ts';
import { renderLab } from '../../lab/render.ts';
import { missingCommand, NEUTRAL_HOST, testUnless, withTempDir } from '../helpers.ts';

test('a cached disk layer that no longer matches its SHA256SUMS is detected', async (t) => {
  await withTempDir(async (dir) => {
    await writeFile(join(dir, 'disk.qcow2'), 'good bytes');
    await writeFile(join(dir, 'SHA256SUMS'), renderSha256Sums({ 'disk.qcow2': { sha256: sha256('good bytes') } }));
    t.true(await verifyDiskLayer(dir));
    await writeFile(join(dir, 'disk.qcow2'), 'flipped bits');
    t.false(await verifyDiskLayer(dir));
    await writeFile(join(dir, 'SHA256SUMS'), '');
    t.false(await verifyDiskLayer(dir), 'empty sums are not a verified image');
  });
});

test('a cached disk is not re-hashed while its size/mtime/inode stamp matches; --verify and any stamp mismatch hash it in full', async (t) => {
  await withTempDir(async (dir) => {
    const disk = join(dir, 'disk.qcow2');
    await writeFile(disk, 'good bytes');
    await writeFile(join(dir, 'SHA256SUMS'), renderSha256Sums({ 'disk.qcow2': { sha256: sha256('good bytes') } }));
    const when = new Date('2026-11-30T12:00:00Z');
    await utimes(disk, when, when);
    await writeDiskStamp(dir, ['disk.qcow2']);
    // Same size, same inode, mtime put back: only a full hash can see this.
    const fh = await open(disk, 'r+');
    await fh.write('bad!', 0);
    await fh.close();
    await utimes(disk, when, when);
    t.true(await verifyDiskLayer(dir), 'the stamp matches: the file is not read (lab:up stays fast)');
    t.false(await verifyDiskLayer(dir, { full: true }), 'image:build --verify hashes it');
    await utimes(disk, when, new Date(when.getTime() + 5000));
    t.false(await verifyDiskLayer(dir), 'a stamp that does not match means a full hash');
    await writeFile(disk, 'good bytes');
    t.true(await verifyDiskLayer(dir), 'good again after a full hash');
    const renewed = JSON.parse(await readFile(join(dir, 'STAMP.json'), 'utf8'));
    t.is(renewed.files['disk.qcow2'].mtimeMs, (await stat(disk)).mtimeMs, 'the full check renewed the stamp');
  });
});

test('an unwritable state or cache directory is named with what to do', async (t) => {
  await withTempDir(async (dir) => {
    // A file where a directory must be: fails for root too.
    await writeFile(join(dir, 'file'), '');
    const error = await t.throwsAsync(ensureWritableDir(join(dir, 'file', 'labs'), 'the lab directory for "lab"'));
    t.true(error instanceof LabError);
    t.regex(error!.message, /cannot write the lab directory for "lab" at .*file\/labs: ENOTDIR/);
    t.regex((error as LabError).hint!, /LABSMITH_STATE_DIR|stateDir/);
    await mkdir(join(dir, 'ok'));
    await chmod(join(dir, 'ok'), 0o755);
    await t.notThrowsAsync(ensureWritableDir(join(dir, 'ok', 'labs'), 'x'));
  });
});

test('a missing host tool names the command and the apt-get line', async (t) => {
  const error = await t.throwsAsync(requireHostTools(['labsmith-missing-tool']));
  t.regex(error!.message, /missing host tools: labsmith-missing-tool/);
  t.regex((error as LabError).hint!, /apt-get install -y labsmith-missing-tool/);
  t.deepEqual(renderAptInstallArgs([HOST_TOOLS.find((x) => x.command === 'ssh')!, HOST_TOOLS.find((x) => x.command === 'ssh-keygen')!]), ['install', '-y', '--no-install-recommends', 'openssh-client']);
});

testUnless(missingCommand('python3'), 'the placeholder ingress script is valid Python', async (t) => {
  await withTempDir(async (dir) => {
    await writeFile(join(dir, 'p.py'), renderPlaceholderScript({ httpPort: 30080, httpsPort: 30443 }));
    const r = await run('python3', ['-m', 'py_compile', join(dir, 'p.py')], { allowFailure: true });
    t.is(r.exitCode, 0, r.stderr);
  });
});

test('lab:render writes the seed with named placeholders instead of secrets', async (t) => {
  await withTempDir(async (dir) => {
    const parsed = parseLabConfig('name: web\n', NEUTRAL_HOST, '/state');
    if (!parsed.ok) return t.fail();
    const files = await renderLab(parsed.config, dir);
    const relative = files.map((f) => f.slice(dir.length + 1));
    t.deepEqual(relative.filter((f) => !f.startsWith('seed-parts/files/')).sort(), ['lab.resolved.json', 'seed-parts/cloud-config.yaml', 'seed/meta-data', 'seed/network-config', 'seed/user-data', 'terraform/stacks/labsmith-web/cdk.tf.json']);
    t.true(relative.includes('seed-parts/files/etc/labsmith/bootstrap/kubeadm.yaml'), 'the archive\'s files, at their guest paths');
    const userData = await readFile(join(dir, 'seed/user-data'), 'utf8');
    t.regex(userData, /<per-lab user key, generated at lab:up>/);
    t.notRegex(userData, /BEGIN (EC |OPENSSH )?PRIVATE KEY/);
  });
});
