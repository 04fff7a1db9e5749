/**
 * The parameter files the guest scripts read (pure): one `KEY='value'` line per parameter, every
 * value quoted by one function, so the scripts in cloud-init/guest/ stay plain files and a value
 * can never become shell code. The shell sources the file; Python reads it with shlex.
 */

export type GuestParams = Record<string, string | number>;

const KEY = /^[A-Z][A-Z0-9_]*$/;

/**
 * Single-quotes a value for POSIX sh: inside single quotes nothing is special, and a single quote
 * itself is closed, escaped and reopened. Newlines (and NUL) are refused: a parameter is one line.
 */
export function shellQuote(value: string): string {
  if (/[\n\r\0]/.test(value)) throw new Error(`a guest parameter cannot hold a newline or NUL: ${JSON.stringify(value)}`);
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** `title` names the script in the header; keys are upper-case shell names. */
export function renderParamFile(title: string, params: GuestParams): string {
  const lines = Object.entries(params).map(([key, value]) => {
    if (!KEY.test(key)) throw new Error(`guest parameter ${JSON.stringify(key)} of ${title}: names are upper-case letters, digits and _`);
    try {
      return `${key}=${shellQuote(String(value))}`;
    } catch (e) {
      throw new Error(`guest parameter ${key} of ${title}: ${(e as Error).message}`);
    }
  });
  // SC2034: the variables are used by the script that sources this file, not here.
  return `# Written by labsmith: parameters of ${title}, read by it at start.\n# shellcheck shell=sh disable=SC2034\n${lines.join('\n')}\n`;
}
