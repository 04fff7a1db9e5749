/**
 * "New hardware" for the restore drill: the exported raw image written to a larger disk and
 * booted under qemu with another disk bus, NIC model, MAC address and memory than the lab had,
 * from the server seed (static address matched by that MAC). Its own qemu command, through the
 * same exec seam as the lab driver; user networking forwards SSH (and the ports the suite
 * reaches, when asked) on loopback only.
 */
import { copyFile, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { LabError } from '../../core/errors.ts';
import { run } from '../../core/exec.ts';
import { sleep } from '../../core/sleep.ts';
import { OVMF_CODE, OVMF_VARS } from '../drivers/qemu.ts';
import { renderAccelArgs } from '../drivers/qemu-args.ts';
import { isProcessAlive } from '../state.ts';

export type DiskBus = 'virtio' | 'sata' | 'nvme';
/** NIC models whose driver the image's kernel has (its cloud kernel has no e1000/e1000e). */
export type NicModel = 'virtio-net-pci' | 'vmxnet3';

export interface NewHardwarePlan {
  name: string;
  dir: string;
  /** A raw disk file standing in for the physical disk. */
  disk: string;
  diskBus: DiskBus;
  nicModel: NicModel;
  macAddress: string;
  memoryMiB: number;
  cpus: number;
  accel: 'kvm' | 'tcg';
  seedIso: string;
  sshPort: number;
  /** More loopback forwards (the placeholder ingress's ports, for the acceptance suite). */
  forwards?: { host: number; guest: number }[];
}

export const NEW_HARDWARE_FILES = { vars: 'OVMF_VARS.fd', serial: 'serial.log', pid: 'qemu.pid' } as const;

function diskArgs(bus: DiskBus, disk: string): string[] {
  const drive = ['-drive', `if=none,id=disk0,format=raw,discard=unmap,file=${disk}`];
  if (bus === 'nvme') return [...drive, '-device', 'nvme,drive=disk0,serial=labsmith-drill'];
  // q35's built-in ICH9 AHCI controller: ports ide.0 … ide.5.
  if (bus === 'sata') return [...drive, '-device', 'ide-hd,drive=disk0,bus=ide.0'];
  return [...drive, '-device', 'virtio-blk-pci,drive=disk0'];
}

export function renderNewHardwareQemuArgs(plan: NewHardwarePlan): string[] {
  return [
    '-name', `labsmith-${plan.name},process=labsmith-${plan.name}`,
    '-machine', 'q35',
    ...renderAccelArgs(plan.accel),
    '-smp', String(plan.cpus),
    '-m', `${plan.memoryMiB}M`,
    '-nodefaults',
    '-display', 'none',
    '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`,
    '-drive', `if=pflash,format=raw,unit=1,file=${join(plan.dir, NEW_HARDWARE_FILES.vars)}`,
    ...diskArgs(plan.diskBus, plan.disk),
    // The seed as a SATA CD-ROM, the way a server gets it from a virtual or USB drive.
    '-drive', `if=none,id=seed,format=raw,readonly=on,file=${plan.seedIso}`,
    '-device', 'ide-cd,drive=seed,bus=ide.1',
    '-netdev', ['user', 'id=net0', ...[{ host: plan.sshPort, guest: 22 }, ...(plan.forwards ?? [])].map((f) => `hostfwd=tcp:127.0.0.1:${f.host}-:${f.guest}`)].join(','),
    '-device', `${plan.nicModel},netdev=net0,mac=${plan.macAddress}`,
    '-object', 'rng-random,id=rng0,filename=/dev/urandom',
    '-device', 'virtio-rng-pci,rng=rng0',
    '-serial', `file:${join(plan.dir, NEW_HARDWARE_FILES.serial)}`,
    '-pidfile', join(plan.dir, NEW_HARDWARE_FILES.pid),
    '-daemonize',
  ];
}

export async function bootNewHardware(plan: NewHardwarePlan, signal?: AbortSignal): Promise<number> {
  await copyFile(OVMF_VARS, join(plan.dir, NEW_HARDWARE_FILES.vars));
  await run('qemu-system-x86_64', renderNewHardwareQemuArgs(plan), { signal, timeoutMs: 30_000, hint: 'qemu refused the new-hardware machine: its message is above' });
  const pid = Number((await readFile(join(plan.dir, NEW_HARDWARE_FILES.pid), 'utf8')).trim());
  if (!pid) throw new LabError('qemu wrote no pid', `see ${join(plan.dir, NEW_HARDWARE_FILES.serial)}`);
  return pid;
}

/** Stops the machine by its pid file, if its qemu still runs (and is ours: its command line names the directory). */
export async function stopNewHardware(dir: string): Promise<void> {
  const pidFile = join(dir, NEW_HARDWARE_FILES.pid);
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (pid && isProcessAlive(pid)) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(dir)) {
      process.kill(pid, 'SIGTERM');
      for (let i = 0; i < 100 && isProcessAlive(pid); i++) await sleep(100);
      if (isProcessAlive(pid)) process.kill(pid, 'SIGKILL');
      while (isProcessAlive(pid)) await sleep(50);
    }
  }
  await rm(pidFile, { force: true });
}
