/**
 * Secret values the user's workloads need never reach the screen, a log, a report or a bundle:
 * each value, once read, is registered here, and every writer of those (progress, the error
 * printer, the failure bundle, the acceptance log bundle) passes its text through `redact`.
 * The value is replaced in its raw form and in base64 (as a Secret's data and kubectl show it).
 */

export interface SecretValue {
  /** `NAME/KEY`: shown as `<redacted:NAME/KEY>`. */
  label: string;
  value: string;
}

const registered: SecretValue[] = [];

/** Values this short are common words and numbers: replacing them would garble the output, so they are refused at load. */
export const MIN_REDACTABLE_LENGTH = 4;

export function registerSecretValue(secret: SecretValue): void {
  if (!registered.some((s) => s.label === secret.label && s.value === secret.value)) registered.push(secret);
}

/** For tests. */
export function clearSecretValues(): void {
  registered.length = 0;
}

/** The forms a value takes in output (pure): raw, trimmed of a final newline, and base64. */
export function secretForms(value: string): string[] {
  const raw = [value, value.replace(/\r?\n$/, '')].filter((v) => v.length >= MIN_REDACTABLE_LENGTH);
  return [...new Set([...raw, ...raw.map((v) => Buffer.from(v).toString('base64'))])].sort((a, b) => b.length - a.length);
}

/** `text` with every form of every secret replaced by its label (pure). */
export function redactSecrets(text: string, secrets: readonly SecretValue[]): string {
  let out = text;
  for (const s of secrets) for (const form of secretForms(s.value)) out = out.split(form).join(`<redacted:${s.label}>`);
  return out;
}

/** `text` with every registered secret replaced. */
export function redact(text: string): string {
  return registered.length ? redactSecrets(text, registered) : text;
}
