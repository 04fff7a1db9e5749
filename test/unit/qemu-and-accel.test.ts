import test from 'ava';
import { LabError } from '../../core/errors.ts';
import { chooseAccel, kernelReachedLateBoot } from '../../lab/accel.ts';
import { renderHostForwards, renderQemuArgs, type QemuPlan } from '../../lab/drivers/qemu-args.ts';

const plan: QemuPlan = {
  name: 'lab',
  accel: 'tcg',
  cpus: 2,
  memoryMiB: 4096,
  overlay: '/s/overlay.qcow2',
  seedIso: '/s/seed.iso',
  boot: { kind: 'uefi', firmwareCode: '/usr/share/OVMF/OVMF_CODE_4M.fd', firmwareVars: '/s/OVMF_VARS.fd' },
  hostAddress: '127.0.0.1',
  forwards: [
    { name: 'http', host: 80, guest: 30080 },
    { name: 'ssh', host: 2222, guest: 22 },
  ],
  serialLog: '/s/serial.log',
  pidFile: '/s/qemu.pid',
  qmpSocket: '/s/qmp.sock',
  qemuLog: '/s/qemu.log',
};

test('qemu command line for TCG (golden)', (t) => {
  t.deepEqual(renderQemuArgs(plan), [
    '-name', 'labsmith-lab,process=labsmith-lab',
    '-machine', 'q35',
    '-accel', 'tcg,thread=multi,tb-size=512', '-cpu', 'max',
    '-smp', '2',
    '-m', '4096M',
    '-nodefaults',
    '-display', 'none',
    '-drive', 'if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd',
    '-drive', 'if=pflash,format=raw,unit=1,file=/s/OVMF_VARS.fd',
    '-drive', 'if=virtio,format=qcow2,discard=unmap,file=/s/overlay.qcow2',
    '-drive', 'if=virtio,format=raw,readonly=on,file=/s/seed.iso',
    '-netdev', 'user,id=net0,hostfwd=tcp:127.0.0.1:80-:30080,hostfwd=tcp:127.0.0.1:2222-:22',
    '-device', 'virtio-net-pci,netdev=net0,romfile=',
    '-object', 'rng-random,id=rng0,filename=/dev/urandom',
    '-device', 'virtio-rng-pci,rng=rng0',
    '-serial', 'file:/s/serial.log',
    '-qmp', 'unix:/s/qmp.sock,server=on,wait=off',
    '-pidfile', '/s/qemu.pid',
    '-D', '/s/qemu.log',
    '-daemonize',
  ]);
});

test('a direct boot hands qemu the kernel and command line (no initramfs) instead of the UEFI firmware, and the disks on NVMe', (t) => {
  const args = renderQemuArgs({ ...plan, boot: { kind: 'direct', kernel: '/i/vmlinuz', cmdline: 'root=PARTUUID=p ro quiet' } });
  t.false(args.some((a) => a.startsWith('if=pflash')), 'SeaBIOS, not OVMF');
  t.false(args.includes('-initrd'));
  const i = args.indexOf('-kernel');
  t.deepEqual(args.slice(i, i + 4), ['-kernel', '/i/vmlinuz', '-append', 'root=PARTUUID=p ro quiet']);
  const d = args.indexOf('if=none,id=root,format=qcow2,discard=unmap,file=/s/overlay.qcow2');
  t.deepEqual(args.slice(d - 1, d + 7), [
    '-drive', 'if=none,id=root,format=qcow2,discard=unmap,file=/s/overlay.qcow2', '-device', 'nvme,serial=labsmith-root,drive=root',
    '-drive', 'if=none,id=seed,format=raw,readonly=on,file=/s/seed.iso', '-device', 'nvme,serial=labsmith-seed,drive=seed',
  ], 'the same overlay and seed, on the bus the kernel drives without modules');
  t.false(args.some((a) => a.startsWith('if=virtio')));
});

test('KVM uses the host CPU', (t) => {
  const args = renderQemuArgs({ ...plan, accel: 'kvm' });
  t.deepEqual(args.slice(4, 8), ['-accel', 'kvm', '-cpu', 'host']);
});

test('forwards bind to the configured host address only', (t) => {
  t.is(renderHostForwards('0.0.0.0', [{ name: 'https', host: 8443, guest: 30443 }]), 'hostfwd=tcp:0.0.0.0:8443-:30443');
});

test('accel choice: tcg when asked, kvm only when the trial boot worked', (t) => {
  t.deepEqual(chooseAccel('tcg', { works: true, reason: '' }), { accel: 'tcg' });
  t.deepEqual(chooseAccel('auto', { works: true, reason: '' }), { accel: 'kvm' });
  const fallback = chooseAccel('auto', { works: false, reason: 'hung' });
  t.is(fallback.accel, 'tcg');
  t.regex(fallback.warning!, /KVM unavailable \(hung\)/);
  const error = t.throws(() => chooseAccel('kvm', { works: false, reason: 'hung' }));
  t.true(error instanceof LabError);
  t.regex((error as LabError).hint!, /vm.accel: auto/);
});

test('late-boot markers in a kernel console', (t) => {
  t.true(kernelReachedLateBoot('[ 1.2] VFS: Unable to mount root fs on unknown-block(0,0)\n[ 1.3] Kernel panic - not syncing'));
  t.false(kernelReachedLateBoot('[ 0.0] Linux version 6.12\n[ 0.1] Command line: console=ttyS0'));
  t.false(kernelReachedLateBoot(''));
});
