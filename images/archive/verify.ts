/**
 * The checks apt makes, made first by us so a bad archive is refused naming the file and the
 * lock entry before anything is built: the InRelease signature against the Debian archive
 * keyring (gpgv), each index's hash from InRelease, each .deb's hash from its Packages index.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabError } from '../../core/errors.ts';
import { run } from '../../core/exec.ts';
import { sha256 } from '../../core/hash.ts';
import { parsePackagesIndex, type PackageStanza } from './layout.ts';

export { DEBIAN_ARCHIVE_KEYRING } from '../../core/paths.ts';

export class ArchiveInputError extends LabError {
  constructor(
    readonly file: string,
    readonly entry: string,
    problem: string,
    hint = 'archive this lock again with `npm run image:archive -- --out DIR` where the mirror still has it, or relock with `npm run image:lock`',
  ) {
    super(`${file} (lock entry ${entry}): ${problem}`, hint);
  }
}

/** Verifies a clearsigned InRelease with gpgv against `keyring`; returns the signed text (what apt reads). */
export async function verifyInRelease(bytes: Buffer, keyring: string, file: string, entry: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'labsmith-gpgv-'));
  try {
    await writeFile(join(dir, 'InRelease'), bytes);
    const result = await run('gpgv', ['--keyring', keyring, '--output', join(dir, 'signed'), join(dir, 'InRelease')], { allowFailure: true });
    if (result.exitCode !== 0) {
      const why = result.stderr.trim().split('\n').filter((l) => /gpgv:/.test(l)).slice(-2).join('; ') || `gpgv exited ${result.exitCode}`;
      throw new ArchiveInputError(file, entry, `its signature does not verify against ${keyring}: ${why}`, 'the file was not signed by the Debian archive: do not use this archive; archive the lock again from the mirror');
    }
    return await readFile(join(dir, 'signed'), 'utf8');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function checkHash(bytes: Buffer, expected: string, file: string, entry: string, against: string): void {
  const actual = sha256(bytes);
  if (actual !== expected) throw new ArchiveInputError(file, entry, `sha256 ${actual} does not match ${expected} from ${against}`, 'the file was changed after it was archived: restore it from a good copy of the archive, or archive the lock again');
}

/** Decompresses a Packages index (by its name: `.xz`, `.gz` or plain) and parses it. */
export async function readPackagesIndex(path: string, name: string): Promise<PackageStanza[]> {
  const tool = name.endsWith('.xz') ? 'xz' : name.endsWith('.gz') ? 'gzip' : undefined;
  // A blob's name has no suffix: the format is given, not guessed.
  const text = tool ? (await run(tool, tool === 'xz' ? ['-dc', '--format=xz'] : ['-dc'], { input: await readFile(path) })).stdout : await readFile(path, 'utf8');
  return parsePackagesIndex(text);
}
