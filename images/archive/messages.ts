/** The error of a build whose lock's mirror state is gone (pure). */
import { LabError } from '../../core/errors.ts';
import type { ImageLock } from '../lock/lock.ts';
import type { MirrorState } from '../mirror.ts';
import type { AptSource } from '../recipe.ts';

export function renderMirrorMovedError(lock: ImageLock, moved: AptSource[], state: MirrorState): LabError {
  const taken = Object.values(lock.debian.releases).map((r) => r.date).sort((a, b) => Date.parse(b) - Date.parse(a))[0] ?? 'unknown';
  const lines = moved.map((s) => {
    const locked = lock.debian.releases[s.suite];
    const now = state.releaseHashes[s.suite];
    return `  - ${s.suite}: locked ${locked ? `${locked.date} (${locked.sha256.slice(0, 12)})` : 'nothing'}, the mirror now has ${state.dates[s.suite]} (${now ? now.slice(0, 12) : '?'})`;
  });
  const snapshot = lock.debian.releases[moved[0]?.suite ?? '']?.date;
  return new LabError(
    `the Debian mirror moved since the lock file was taken (${taken}):\n${lines.join('\n')}`,
    [
      'three ways on:',
      '  1. new packages: `npm run image:lock` (it prints what changed), then build again;',
      '  2. this exact build, offline: `--artifacts DIR` with the input archive `npm run image:archive -- --out DIR` made of this lock;',
      `  3. this exact build, online: \`debian.snapshot: <YYYYMMDDTHHMMSSZ>\` in lab.yaml, a snapshot.debian.org moment when the mirror had this lock's state (just after ${snapshot ?? 'the locked dates'})`,
    ].join('\n'),
  );
}
