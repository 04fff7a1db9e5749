/** qemu command line for a lab (pure). */
import { forwardProtocols, type Forward } from '../../config/lab-config.ts';

export interface QemuPlan {
  name: string;
  accel: 'kvm' | 'tcg';
  cpus: number;
  memoryMiB: number;
  overlay: string;
  seedIso: string;
  firmwareCode: string;
  firmwareVars: string;
  hostAddress: string;
  forwards: Forward[];
  serialLog: string;
  pidFile: string;
  qmpSocket: string;
}

export function renderHostForwards(hostAddress: string, forwards: Forward[]): string {
  return forwards.flatMap((f) => forwardProtocols(f).map((p) => `hostfwd=${p}:${hostAddress}:${f.host}-:${f.guest}`)).join(',');
}

export function renderQemuArgs(plan: QemuPlan): string[] {
  const netdev = ['user', 'id=net0', renderHostForwards(plan.hostAddress, plan.forwards)].filter(Boolean).join(',');
  return [
    '-name', `labsmith-${plan.name},process=labsmith-${plan.name}`,
    '-machine', 'q35',
    ...(plan.accel === 'tcg' ? ['-accel', 'tcg,thread=multi', '-cpu', 'max'] : ['-accel', 'kvm', '-cpu', 'host']),
    '-smp', String(plan.cpus),
    '-m', `${plan.memoryMiB}M`,
    '-nodefaults',
    '-display', 'none',
    '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${plan.firmwareCode}`,
    '-drive', `if=pflash,format=raw,unit=1,file=${plan.firmwareVars}`,
    '-drive', `if=virtio,format=qcow2,discard=unmap,file=${plan.overlay}`,
    '-drive', `if=virtio,format=raw,readonly=on,file=${plan.seedIso}`,
    '-netdev', netdev,
    '-device', 'virtio-net-pci,netdev=net0',
    // Guest entropy from the host: key generation and TLS do not stall at boot.
    '-object', 'rng-random,id=rng0,filename=/dev/urandom',
    '-device', 'virtio-rng-pci,rng=rng0',
    '-serial', `file:${plan.serialLog}`,
    '-qmp', `unix:${plan.qmpSocket},server=on,wait=off`,
    '-pidfile', plan.pidFile,
    '-daemonize',
  ];
}
