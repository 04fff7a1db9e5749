/**
 * image:export on real qemu-img and sgdisk with a small GPT disk in the shape the image has
 * (ESP + root): raw and qcow2 with their sha256, and --size moving the backup GPT header to
 * the new end. Booting an exported image on a larger disk is the restore drill's part.
 */
import test from 'ava';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../core/exec.ts';
import { exportImage, planExport, virtualSize } from '../../images/export.ts';
import { missingCommand, testUnless, withTempDir } from '../helpers.ts';

const MiB = 2 ** 20;

async function builtDiskLike(dir: string): Promise<string> {
  const raw = join(dir, 'built.raw');
  await run('truncate', ['-s', '64M', raw]);
  await run('sgdisk', ['--new=1:2048:+16M', '--typecode=1:ef00', '--new=2:0:0', '--typecode=2:8304', raw]);
  await writeFile(join(dir, 'marker'), 'root filesystem bytes');
  await run('dd', [`if=${join(dir, 'marker')}`, `of=${raw}`, 'bs=1M', 'seek=17', 'conv=notrunc', 'status=none']);
  await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, join(dir, 'disk.qcow2')]);
  return join(dir, 'disk.qcow2');
}

test('planExport refuses a bad format, a bad size and a size below the image', (t) => {
  t.throws(() => planExport({ format: 'vmdk' as never }, 100), { message: /--format vmdk is not one of raw, qcow2/ });
  t.throws(() => planExport({ format: 'raw', size: 'big' }, 100), { message: /--size big is not a size/ });
  t.throws(() => planExport({ format: 'raw', size: '1MiB' }, 2 * MiB), { message: /smaller than the image/ });
  t.deepEqual(planExport({ format: 'qcow2', size: '200GiB' }, MiB), { sizeBytes: 200 * 1024 ** 3 });
});

testUnless(missingCommand('qemu-img', 'sgdisk', 'sha256sum'), 'raw export with --size: the disk is that size, the GPT backup header is at its end, sha256 beside it checks', async (t) => {
  await withTempDir(async (dir) => {
    const disk = await builtDiskLike(dir);
    const out = join(dir, 'server.raw');
    const e = await exportImage({ disk, format: 'raw', out, size: '256MiB' });
    t.is(e.virtualBytes, 256 * MiB);
    t.is((await stat(out)).size, 256 * MiB);
    t.true(e.fileBytes < 64 * MiB, 'sparse');
    const verify = await run('sgdisk', ['-v', out]);
    t.regex(verify.stdout, /No problems found/);
    t.regex((await run('sgdisk', ['-p', out])).stdout, /last usable sector is 524254/);
    const check = await run('sha256sum', ['-c', `${out}.sha256`], { cwd: dir });
    t.regex(check.stdout, /server\.raw: OK/);
    t.true((await readFile(out)).subarray(17 * MiB, 17 * MiB + 21).equals(Buffer.from('root filesystem bytes')), 'the partitions are copied');
  });
});

testUnless(missingCommand('qemu-img', 'sgdisk'), 'without --size the raw file is the built size, and dd to a larger disk leaves a header for first boot to move; qcow2 export', async (t) => {
  await withTempDir(async (dir) => {
    const disk = await builtDiskLike(dir);
    const raw = await exportImage({ disk, format: 'raw', out: join(dir, 'a.raw') });
    t.is(raw.virtualBytes, 64 * MiB);
    const bigger = join(dir, 'disk.img');
    await run('truncate', ['-s', '256M', bigger]);
    await run('dd', [`if=${raw.file}`, `of=${bigger}`, 'bs=1M', 'conv=notrunc,sparse', 'status=none']);
    // What first boot's growpart sees on the new disk (the drill boots it and checks the result).
    const verify = await run('sgdisk', ['-v', bigger], { allowFailure: true });
    t.regex(verify.stdout + verify.stderr, /secondary header|end of the disk|Problem/i);
    const q = await exportImage({ disk, format: 'qcow2', out: join(dir, 'b.qcow2'), size: '512MiB' });
    t.is(await virtualSize(q.file, 'qcow2'), 512 * MiB);
    t.regex((await run('qemu-img', ['info', q.file])).stdout, /file format: qcow2/);
    t.is((await readFile(q.sha256File, 'utf8')).split('  ')[0], q.sha256);
  });
});

import { renderNewHardwareQemuArgs, type NewHardwarePlan } from '../../lab/restore/new-hardware.ts';

const HW: NewHardwarePlan = { name: 'd', dir: '/hw', disk: '/hw/disk.img', diskBus: 'nvme', nicModel: 'vmxnet3', macAddress: '52:54:00:d1:11:0b', memoryMiB: 3072, cpus: 2, accel: 'tcg', seedIso: '/hw/seed.iso', sshPort: 2299 };

test('new hardware: the disk on NVMe, SATA or virtio, the NIC model and MAC given, SSH forwarded on loopback only', (t) => {
  const args = renderNewHardwareQemuArgs(HW).join(' ');
  t.regex(args, /-drive if=none,id=disk0,format=raw,discard=unmap,file=\/hw\/disk\.img -device nvme,drive=disk0/);
  t.regex(args, /-device vmxnet3,netdev=net0,mac=52:54:00:d1:11:0b/);
  t.regex(args, /hostfwd=tcp:127\.0\.0\.1:2299-:22(\s|$)/);
  t.regex(args, /-m 3072M/);
  t.regex(renderNewHardwareQemuArgs({ ...HW, diskBus: 'sata' }).join(' '), /-device ide-hd,drive=disk0,bus=ide\.0/);
  t.regex(renderNewHardwareQemuArgs({ ...HW, diskBus: 'virtio', nicModel: 'virtio-net-pci' }).join(' '), /-device virtio-blk-pci,drive=disk0 .*-device virtio-net-pci,netdev=net0,mac=/);
  // The suite's ports, on loopback too.
  const withForwards = renderNewHardwareQemuArgs({ ...HW, forwards: [{ host: 2380, guest: 30080 }, { host: 2443, guest: 30443 }] });
  t.is(withForwards[withForwards.indexOf('-netdev') + 1], 'user,id=net0,hostfwd=tcp:127.0.0.1:2299-:22,hostfwd=tcp:127.0.0.1:2380-:30080,hostfwd=tcp:127.0.0.1:2443-:30443');
});

testUnless(missingCommand('qemu-system-x86_64'), "qemu knows the new hardware's devices (nvme, vmxnet3, ide-hd, ide-cd)", async (t) => {
  const devices = (await run('qemu-system-x86_64', ['-machine', 'q35', '-device', 'help'])).stdout;
  for (const d of ['"nvme"', '"vmxnet3"', '"ide-hd"', '"ide-cd"', '"virtio-blk-pci"']) t.true(devices.includes(d), d);
});
