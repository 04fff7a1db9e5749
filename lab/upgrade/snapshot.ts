/**
 * The rehearsal's rollback point: an internal qcow2 snapshot of the lab's overlay disk, taken and
 * applied with the VM stopped. qemu-img takes the image's write lock, so a running VM makes it
 * fail; that failure becomes an error telling the user to stop the lab first.
 */
import { run } from '../../core/exec.ts';
import { CommandError, LabError } from '../../core/errors.ts';

export interface DiskSnapshot { id: string; tag: string }

/** Parses `qemu-img snapshot -l` (header "ID TAG VM SIZE DATE VM CLOCK ICOUNT"; qemu 7.2 adds no other columns before TAG). */
export function parseSnapshotList(output: string): DiskSnapshot[] {
  const lines = output.split('\n');
  const header = lines.findIndex((l) => /^ID\s+TAG\s/.test(l.trim()));
  if (header < 0) return [];
  return lines.slice(header + 1).map((l) => l.trim().split(/\s+/)).filter((c) => c.length >= 2 && c[0] !== '').map((c) => ({ id: c[0]!, tag: c[1]! }));
}

/** True when qemu-img's message says another process holds the image (qemu's image locking). */
export function isImageLockError(message: string): boolean {
  return /Failed to get "(write|shared|consistent read)" lock|Is another process using the image/.test(message);
}

async function qemuImgSnapshot(overlay: string, args: string[], doing: string): Promise<string> {
  try {
    return (await run('qemu-img', ['snapshot', ...args, overlay], { timeoutMs: 120_000 })).stdout;
  } catch (e) {
    if (e instanceof CommandError && isImageLockError(e.message)) {
      throw new LabError(`cannot ${doing} ${overlay}: the disk is in use (qemu holds its lock), the lab VM is probably running`, 'stop the lab first (npm run lab:down), then run the upgrade step again');
    }
    throw e;
  }
}

export async function listSnapshots(overlay: string): Promise<DiskSnapshot[]> {
  return parseSnapshotList(await qemuImgSnapshot(overlay, ['-l'], 'list the snapshots of'));
}

export async function createSnapshot(overlay: string, tag: string): Promise<void> {
  if ((await listSnapshots(overlay)).some((s) => s.tag === tag)) {
    throw new LabError(`${overlay} already has a snapshot named ${tag}`, `roll back to it or delete it (qemu-img snapshot -d ${tag} ${overlay}) before taking a new rollback point`);
  }
  await qemuImgSnapshot(overlay, ['-c', tag], 'snapshot');
}

export async function rollBackToSnapshot(overlay: string, tag: string): Promise<void> {
  const snapshots = await listSnapshots(overlay);
  if (!snapshots.some((s) => s.tag === tag)) {
    throw new LabError(`${overlay} has no snapshot named ${tag} (it has: ${snapshots.map((s) => s.tag).join(', ') || 'none'})`, 'the rollback point is taken by the upgrade before it changes anything; without it there is nothing to roll back to');
  }
  await qemuImgSnapshot(overlay, ['-a', tag], 'roll back');
}
