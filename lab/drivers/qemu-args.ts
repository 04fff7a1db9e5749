/** qemu command line for a lab (pure). */
import { forwardProtocols, type Forward } from '../../config/lab-config.ts';

/**
 * How the VM starts: UEFI (OVMF, then the disk's GRUB and initramfs), as a server boots the
 * image, from virtio disks; or direct: qemu loads the disk's own kernel, without its initramfs,
 * under SeaBIOS, from NVMe disks the kernel drives itself (see renderDirectBootCommandLine).
 * The disk's contents are the same either way.
 */
export type QemuBoot =
  | { kind: 'uefi'; firmwareCode: string; firmwareVars: string }
  | { kind: 'direct'; kernel: string; cmdline: string };

export interface QemuPlan {
  name: string;
  accel: 'kvm' | 'tcg';
  cpus: number;
  memoryMiB: number;
  overlay: string;
  seedIso: string;
  boot: QemuBoot;
  hostAddress: string;
  forwards: Forward[];
  serialLog: string;
  pidFile: string;
  qmpSocket: string;
  /** qemu's own messages (stderr and guest errors). */
  qemuLog: string;
}

/** qemu's option syntax: a comma inside a value is written twice (`a,b` → `a,,b`). */
export function qemuOptionValue(value: string): string {
  return value.replaceAll(',', ',,');
}

/**
 * Every feature TCG emulates. Not `max,-svm`: udev would no longer load kvm (about 3 s of the
 * emulated CPU at boot), but the guest's systemd then fails every mount unit (tried on trixie's
 * 6.12 kernel under qemu 7.2).
 */
export const TCG_CPU = 'max';

/** MiB of host memory for translated code under TCG. */
export const TCG_TB_SIZE_MIB = 512;

export function renderHostForwards(hostAddress: string, forwards: Forward[]): string {
  return forwards.flatMap((f) => forwardProtocols(f).map((p) => `hostfwd=${p}:${hostAddress}:${f.host}-:${f.guest}`)).join(',');
}

export function renderBootArgs(boot: QemuBoot): string[] {
  if (boot.kind === 'direct') return ['-kernel', boot.kernel, '-append', boot.cmdline];
  return [
    '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${qemuOptionValue(boot.firmwareCode)}`,
    '-drive', `if=pflash,format=raw,unit=1,file=${qemuOptionValue(boot.firmwareVars)}`,
  ];
}

/** The lab's disk and its seed: virtio for UEFI (the initramfs loads virtio-blk), NVMe for a direct boot. */
export function renderDiskArgs(boot: QemuBoot, overlay: string, seedIso: string): string[] {
  const disks = [
    { id: 'root', options: `format=qcow2,discard=unmap,file=${qemuOptionValue(overlay)}` },
    { id: 'seed', options: `format=raw,readonly=on,file=${qemuOptionValue(seedIso)}` },
  ];
  if (boot.kind === 'uefi') return disks.flatMap((d) => ['-drive', `if=virtio,${d.options}`]);
  return disks.flatMap((d) => ['-drive', `if=none,id=${d.id},${d.options}`, '-device', `nvme,serial=labsmith-${d.id},drive=${d.id}`]);
}

/** KVM with the host's CPU, or TCG: one thread per vCPU and a larger translation cache (the default, tens of MiB, is flushed and retranslated over and over during boot). */
export function renderAccelArgs(accel: 'kvm' | 'tcg'): string[] {
  return accel === 'tcg' ? ['-accel', `tcg,thread=multi,tb-size=${TCG_TB_SIZE_MIB}`, '-cpu', TCG_CPU] : ['-accel', 'kvm', '-cpu', 'host'];
}

export function renderQemuArgs(plan: QemuPlan): string[] {
  const netdev = ['user', 'id=net0', renderHostForwards(plan.hostAddress, plan.forwards)].filter(Boolean).join(',');
  return [
    '-name', `labsmith-${plan.name},process=labsmith-${plan.name}`,
    '-machine', 'q35',
    ...renderAccelArgs(plan.accel),
    '-smp', String(plan.cpus),
    '-m', `${plan.memoryMiB}M`,
    '-nodefaults',
    '-display', 'none',
    ...renderBootArgs(plan.boot),
    ...renderDiskArgs(plan.boot, plan.overlay, plan.seedIso),
    '-netdev', netdev,
    // No option ROM: OVMF offers no network boot, so it neither tries PXE nor waits for it.
    '-device', 'virtio-net-pci,netdev=net0,romfile=',
    // Guest entropy from the host: key generation and TLS do not stall at boot.
    '-object', 'rng-random,id=rng0,filename=/dev/urandom',
    '-device', 'virtio-rng-pci,rng=rng0',
    // `file:` takes the rest of the argument as the path (no option parsing); `unix:` parses options.
    '-serial', `file:${plan.serialLog}`,
    '-qmp', `unix:${qemuOptionValue(plan.qmpSocket)},server=on,wait=off`,
    '-pidfile', plan.pidFile,
    // With -D, qemu keeps its stderr after daemonizing (the caller points it at qemu.log);
    // no -d items: guest_errors alone logs every probe of the absent TPM, tens of thousands of lines.
    '-D', plan.qemuLog,
    '-daemonize',
  ];
}
