import test from 'ava';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../core/exec.ts';
import { readTar, type TarEntry } from '../../core/tar.ts';
import { checkImageHygiene } from '../../images/hygiene.ts';
import { parseDpkgStatus, parseSha256Sums, renderSha256Sums } from '../../images/manifest.ts';
import { withTempDir } from '../helpers.ts';

test('readTar lists members of a real GNU tar with long names, links and contents', async (t) => {
  await withTempDir(async (dir) => {
    const root = join(dir, 'root');
    const long = 'd'.repeat(120);
    await mkdir(join(root, 'etc', long), { recursive: true });
    await writeFile(join(root, 'etc', 'machine-id'), '');
    await writeFile(join(root, 'etc', 'hostname'), 'box\n');
    await writeFile(join(root, 'etc', long, 'f'), 'x'.repeat(1000));
    await symlink('../run/stub', join(root, 'etc', 'resolv.conf'));
    await run('tar', ['--sort=name', '-C', root, '-cf', join(dir, 't.tar'), '.']);
    const entries = await readTar(join(dir, 't.tar'), { hashContents: true, readContent: (p) => p === 'etc/hostname' });
    const byPath = new Map(entries.map((e) => [e.path, e]));
    t.is(byPath.get('etc/hostname')?.content?.toString(), 'box\n');
    t.is(byPath.get(`etc/${long}/f`)?.size, 1000);
    t.is(byPath.get('etc/resolv.conf')?.type, 'symlink');
    t.is(byPath.get('etc/resolv.conf')?.linkTarget, '../run/stub');
    t.is(byPath.get('etc')?.type, 'dir');
    t.is(byPath.get('etc/machine-id')?.sha256, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });
});

const entry = (path: string, extra: Partial<TarEntry> = {}): TarEntry => ({ path, type: 'file', size: 0, mode: 0o644, mtime: 0, uid: 0, gid: 0, linkTarget: '', ...extra });
const clean = [entry('etc/machine-id'), entry('etc/hostname', { size: 10, content: Buffer.from('localhost\n') }), entry('var/log', { type: 'dir' }), entry('var/lib/apt/lists/lock')];

test('a clean image passes hygiene', (t) => {
  t.deepEqual(checkImageHygiene(clean, { hostname: 'builder' }), []);
});

const dirty: [string, TarEntry[], string][] = [
  ['SSH host key', [entry('etc/ssh/ssh_host_ed25519_key')], 'etc/ssh/ssh_host_ed25519_key'],
  ['machine id', [entry('etc/machine-id', { size: 33 })], 'etc/machine-id'],
  ['cloud-init state', [entry('var/lib/cloud/instance/boot-finished')], 'var/lib/cloud/instance/boot-finished'],
  ['apt lists', [entry('var/lib/apt/lists/deb.debian.org_debian_dists_trixie_InRelease')], 'var/lib/apt/lists/deb.debian.org_debian_dists_trixie_InRelease'],
  ['apt cache', [entry('var/cache/apt/archives/less_1_amd64.deb')], 'var/cache/apt/archives/less_1_amd64.deb'],
  ['logs', [entry('var/log/dpkg.log', { size: 100 })], 'var/log/dpkg.log'],
  ['build host name', [entry('etc/hostname', { content: Buffer.from('builder\n'), size: 8 })], 'etc/hostname'],
  ['temp files', [entry('tmp/x')], 'tmp/x'],
];
for (const [what, extra, path] of dirty) {
  test(`hygiene finds ${what}`, (t) => {
    const entries = [...clean.filter((e) => !extra.some((x) => x.path === e.path)), ...extra];
    t.deepEqual(checkImageHygiene(entries, { hostname: 'builder' }).map((f) => f.path), [path]);
  });
}

test('missing machine-id is a finding (systemd needs the empty file)', (t) => {
  t.deepEqual(checkImageHygiene(clean.filter((e) => e.path !== 'etc/machine-id'), { hostname: 'b' }).map((f) => f.path), ['etc/machine-id']);
});

test('parseDpkgStatus keeps installed packages sorted', (t) => {
  const status = 'Package: zsh\nStatus: install ok installed\nVersion: 5.9\nArchitecture: amd64\n\nPackage: old\nStatus: deinstall ok config-files\nVersion: 1\n\nPackage: bash\nStatus: install ok installed\nVersion: 5.2\nArchitecture: amd64\n';
  t.deepEqual(parseDpkgStatus(status), [
    { name: 'bash', version: '5.2', architecture: 'amd64' },
    { name: 'zsh', version: '5.9', architecture: 'amd64' },
  ]);
});

test('SHA256SUMS round-trips and is what sha256sum -c accepts', async (t) => {
  await withTempDir(async (dir) => {
    await writeFile(join(dir, 'a.qcow2'), 'hello');
    const sums = renderSha256Sums({ 'a.qcow2': { sha256: '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824' } });
    t.deepEqual(parseSha256Sums(sums), { 'a.qcow2': '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824' });
    await writeFile(join(dir, 'SHA256SUMS'), sums);
    const r = await run('sha256sum', ['-c', 'SHA256SUMS'], { cwd: dir });
    t.regex(r.stdout, /a.qcow2: OK/);
  });
});
