/**
 * KVM or TCG. The device node alone proves nothing (on some hosts KVM guests hang), so KVM
 * is used only after a bounded trial boot of the image's own kernel reached its late boot
 * messages. The verdict is cached per host boot and kernel.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LabError } from '../core/errors.ts';
import { run } from '../core/exec.ts';
import { sha256 } from '../core/hash.ts';

export interface KvmProbe {
  works: boolean;
  reason: string;
}

export type AccelChoice = { accel: 'kvm' | 'tcg'; warning?: string };

/** The decision (pure). */
export function chooseAccel(requested: 'auto' | 'kvm' | 'tcg', probe: KvmProbe | undefined): AccelChoice {
  if (requested === 'tcg') return { accel: 'tcg' };
  if (probe?.works) return { accel: 'kvm' };
  if (requested === 'kvm') {
    throw new LabError(`vm.accel is kvm, but KVM does not work on this host: ${probe?.reason ?? 'not probed'}`, 'set vm.accel: auto (or tcg) in lab.yaml');
  }
  return { accel: 'tcg', warning: `KVM unavailable (${probe?.reason ?? 'not probed'}): using TCG emulation, which is several times slower` };
}

/** A kernel that ran under KVM prints these before it needs a root filesystem. */
export function kernelReachedLateBoot(serial: string): boolean {
  return /Kernel panic|VFS: Unable to mount root|Freeing unused kernel/.test(serial);
}

export async function probeKvm(kernel: Buffer, cacheDir: string, timeoutMs = 30_000, signal?: AbortSignal): Promise<KvmProbe> {
  if (!existsSync('/dev/kvm')) return { works: false, reason: '/dev/kvm does not exist' };
  const bootId = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => 'unknown')).trim();
  const key = sha256(`${bootId}:${sha256(kernel)}`).slice(0, 16);
  const dir = join(cacheDir, 'kvm-probe');
  const verdictFile = join(dir, `${key}.json`);
  const cached = await readFile(verdictFile, 'utf8').then((t) => JSON.parse(t) as KvmProbe).catch(() => undefined);
  if (cached) return cached;

  await mkdir(dir, { recursive: true });
  const kernelPath = join(dir, 'vmlinuz');
  await writeFile(kernelPath, kernel);
  const result = await run(
    'qemu-system-x86_64',
    ['-accel', 'kvm', '-cpu', 'host', '-m', '256M', '-nodefaults', '-display', 'none', '-no-reboot', '-serial', 'stdio',
      '-kernel', kernelPath, '-append', 'console=ttyS0 panic=-1 root=/dev/labsmith-probe-nonexistent'],
    { allowFailure: true, timeoutMs, signal },
  );
  // An interrupted trial says nothing about KVM: no verdict is cached.
  signal?.throwIfAborted();
  const serial = result.stdout + result.stderr;
  const verdict: KvmProbe = kernelReachedLateBoot(serial)
    ? { works: true, reason: 'trial boot under KVM reached late boot' }
    : { works: false, reason: describeFailedProbe(result, serial, timeoutMs) };
  await writeFile(verdictFile, JSON.stringify(verdict) + '\n');
  return verdict;
}

function describeFailedProbe(result: { timedOut: boolean; signal?: string; exitCode: number }, output: string, timeoutMs: number): string {
  if (result.timedOut) return `a trial boot under KVM hung (no kernel progress within ${timeoutMs / 1000}s)`;
  const last = output.trim().split('\n').filter(Boolean).slice(-2).join(' / ') || 'no output';
  return `a trial boot under KVM failed (${result.signal ?? `exit ${result.exitCode}`}): ${last}`;
}
