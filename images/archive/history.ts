/** What each archived lock added over the one before it, from the archive's own indexes (pure). */
import type { ArchiveIndex } from './layout.ts';

export interface LockGrowth {
  lockId: string;
  lockDate: string;
  /** Bytes of files this lock's view holds that the previous (older) lock's did not. */
  addedBytes: number;
  addedFiles: number;
}

export function planArchiveHistory(views: ArchiveIndex[]): LockGrowth[] {
  const sorted = [...views].sort((a, b) => a.lockDate.localeCompare(b.lockDate) || a.archivedAt.localeCompare(b.archivedAt));
  const out: LockGrowth[] = [];
  const seen = new Set<string>();
  for (const view of sorted) {
    const unique = new Map(view.files.map((f) => [f.sha256, f.bytes]));
    let addedBytes = 0;
    let addedFiles = 0;
    for (const [sha, bytes] of unique) {
      if (seen.has(sha)) continue;
      addedBytes += bytes;
      addedFiles += 1;
    }
    for (const sha of unique.keys()) seen.add(sha);
    out.push({ lockId: view.lockId, lockDate: view.lockDate, addedBytes, addedFiles });
  }
  return out;
}
