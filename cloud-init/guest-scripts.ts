/**
 * The scripts that run in the guest are files in cloud-init/guest/, read once when this module
 * loads and shipped byte for byte (the renderers that place them stay pure). Their parameters
 * travel beside them in a rendered parameter file (guest-params.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GUEST_SCRIPT_SOURCES, REPO_ROOT } from '../core/paths.ts';

export type GuestScript = Exclude<keyof typeof GUEST_SCRIPT_SOURCES, 'dir'>;

/** The repository path of a guest script (for tests and tools that run it on the host). */
export function guestScriptPath(name: GuestScript): string {
  return join(REPO_ROOT, GUEST_SCRIPT_SOURCES[name]);
}

const texts = new Map<GuestScript, string>();

export function guestScript(name: GuestScript): string {
  let text = texts.get(name);
  if (text === undefined) {
    text = readFileSync(guestScriptPath(name), 'utf8');
    texts.set(name, text);
  }
  return text;
}
