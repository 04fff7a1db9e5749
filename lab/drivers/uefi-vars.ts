/**
 * The UEFI variables a lab's firmware starts from. On Debian's empty template OVMF's first boot
 * initialises its variable store and writes its boot options, each write to the emulated flash
 * a trap into qemu: under TCG GRUB started 1.2-1.5 s later than from a store that had been
 * through one boot (measured, bare qemu with a lab's devices). So a store that has been through
 * one boot is cached per firmware and device layout. It comes from a firmware-only boot on a blank
 * disk, stopped when OVMF turns to its first boot option: no guest ever ran on it (a guest's kernel
 * may leave crash dumps in its variables). A firmware that never gets there is remembered, and
 * its labs start from the template.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../core/exec.ts';
import { hashInputs, sha256File } from '../../core/hash.ts';
import { sleep } from '../../core/sleep.ts';
import { renderQemuArgs, type QemuPlan } from './qemu-args.ts';

/**
 * What OVMF prints on the serial console once its boot options are written and it tries the
 * first: `loading Boot0001 …`, or on the blank disk `failed to load Boot0001 …`.
 */
export const FIRMWARE_BOOT_MARKER = /BdsDxe: (?:loading|failed to load) Boot/;

export interface UefiVarsRequest {
  cacheDir: string;
  firmwareCode: string;
  varsTemplate: string;
  /** The lab's machine: what decides the firmware's devices and so its boot options. */
  machine: Pick<QemuPlan, 'accel' | 'cpus' | 'memoryMiB'>;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** The firmware-only machine (pure): the lab's qemu command line on stand-in disks, no forwards, in the foreground. */
export function renderFirmwareBootArgs(req: Pick<UefiVarsRequest, 'firmwareCode' | 'machine'>, dir: string): string[] {
  const plan: QemuPlan = {
    name: 'uefi-vars',
    ...req.machine,
    overlay: join(dir, 'disk.qcow2'),
    seedIso: join(dir, 'seed.raw'),
    boot: { kind: 'uefi', firmwareCode: req.firmwareCode, firmwareVars: join(dir, 'vars.fd') },
    hostAddress: '127.0.0.1',
    forwards: [],
    serialLog: join(dir, 'serial.log'),
    pidFile: join(dir, 'qemu.pid'),
    qmpSocket: join(dir, 'qmp.sock'),
    qemuLog: join(dir, 'qemu.log'),
  };
  return renderQemuArgs(plan).filter((arg) => arg !== '-daemonize');
}

/** The variables file a lab should copy: the cached warm store, or the template where none can be had. */
export async function uefiVarsForLab(req: UefiVarsRequest): Promise<string> {
  const dir = join(req.cacheDir, 'uefi-vars');
  const key = hashInputs({
    code: await sha256File(req.firmwareCode),
    vars: await sha256File(req.varsTemplate),
    machine: renderFirmwareBootArgs(req, '/dir'),
  }).slice(0, 16);
  const warm = join(dir, `${key}.fd`);
  const failed = join(dir, `${key}.failed`);
  if (existsSync(warm)) return warm;
  if (existsSync(failed)) return req.varsTemplate;
  await mkdir(dir, { recursive: true });
  const scratch = await mkdtemp(join(dir, '.boot-'));
  try {
    const reached = await bootFirmwareOnce(req, scratch);
    // An interrupted boot says nothing about the firmware: nothing is remembered.
    req.signal?.throwIfAborted();
    if (!reached.ok) {
      await writeFile(failed, `${reached.reason}\n`);
      return req.varsTemplate;
    }
    await rename(join(scratch, 'vars.fd'), warm);
    return warm;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

async function bootFirmwareOnce(req: UefiVarsRequest, scratch: string): Promise<{ ok: true } | { ok: false; reason: string }> {
  await copyFile(req.varsTemplate, join(scratch, 'vars.fd'));
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', join(scratch, 'disk.qcow2'), '64M'], { signal: req.signal });
  await writeFile(join(scratch, 'seed.raw'), Buffer.alloc(2 ** 20));
  const timeoutMs = req.timeoutMs ?? 60_000;
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  req.signal?.addEventListener('abort', onAbort, { once: true });
  let exited = false;
  const qemu = run('qemu-system-x86_64', renderFirmwareBootArgs(req, scratch), { signal: stop.signal, allowFailure: true }).finally(() => (exited = true));
  const serial = join(scratch, 'serial.log');
  const deadline = Date.now() + timeoutMs;
  let seen = false;
  let exitedFirst = false;
  try {
    while (!exited && !stop.signal.aborted && Date.now() < deadline) {
      if (FIRMWARE_BOOT_MARKER.test(await readFile(serial, 'latin1').catch(() => ''))) {
        seen = true;
        break;
      }
      await sleep(100);
    }
    exitedFirst = exited;
  } finally {
    stop.abort();
    req.signal?.removeEventListener('abort', onAbort);
  }
  const result = await qemu;
  if (seen) return { ok: true };
  const why = exitedFirst ? `qemu exited ${result.exitCode}: ${result.stderr.trim().split('\n').at(-1) ?? ''}` : `OVMF tried no boot option (no ${FIRMWARE_BOOT_MARKER.source} on the console) within ${timeoutMs / 1000} s`;
  return { ok: false, reason: why };
}
