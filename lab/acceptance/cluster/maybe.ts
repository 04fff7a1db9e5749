/** A value, or why there is none (a reason a check reports instead of pretending). */
export type Maybe<T> = T | { missing: string };

export function isMissing<T extends object>(v: Maybe<T> | undefined): v is { missing: string } | undefined {
  return v === undefined || 'missing' in v;
}
