/**
 * The in-build check that apt used exactly the planned mirror state (pure renderers): the hook
 * script is a real file (images/hooks/check-mirror-state.sh), parameterised by a small file of
 * `suite list-file sha256` lines rendered here.
 */
import { readFileSync } from 'node:fs';
import type { AptSource } from './mmdebstrap.ts';

export const MIRROR_CHECK_SCRIPT = readFileSync(new URL('./hooks/check-mirror-state.sh', import.meta.url), 'utf8');
/** Beside the script in the build directory's hooks (the script reads it from there). */
export const MIRROR_CHECK_PARAMS = 'mirror-state';

// apt's URItoFileName quotes these (and anything unprintable or space) as %xx.
const APT_QUOTED = new Set('\\|{}[]<>"^~_=!@#$%^&*');

/** The name apt gives a suite's InRelease in /var/lib/apt/lists. */
export function aptListFileName(source: AptSource): string {
  const uri = `${source.uri.replace(/\/+$/, '')}/dists/${source.suite}/InRelease`;
  const withoutScheme = uri.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').replace(/^[^/@]*@/, '');
  const quoted = [...withoutScheme].map((c) => (APT_QUOTED.has(c) || c <= ' ' || c >= '\x7f' ? `%${c.charCodeAt(0).toString(16).padStart(2, '0')}` : c)).join('');
  return quoted.replace(/\//g, '_');
}

const TOKEN = /^[^\s]+$/;

/** One line per suite the run downloads: what apt must have stored, and its sha256 from the plan. */
export function renderMirrorCheckParams(sources: AptSource[], releaseHashes: Record<string, string>): string {
  return sources
    .map((s) => {
      const sha = releaseHashes[s.suite];
      if (!sha || !/^[0-9a-f]{64}$/.test(sha)) throw new Error(`no planned InRelease sha256 for ${s.suite}`);
      const file = aptListFileName(s);
      if (!TOKEN.test(s.suite) || !TOKEN.test(file)) throw new Error(`suite ${JSON.stringify(s.suite)} cannot be checked`);
      return `${s.suite} ${file} ${sha}\n`;
    })
    .join('');
}
