/** Typed errors that carry a hint telling the user what to do next. */

export class LabError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
    /** Process exit code the entry point uses. */
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** One problem in a config file, named by its field path (e.g. `network.forwards.http.host`). */
export interface ConfigProblem {
  path: string;
  message: string;
}

export class ConfigError extends LabError {
  constructor(
    readonly file: string,
    readonly problems: ConfigProblem[],
  ) {
    super(
      `${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n` +
        problems.map((p) => `  - ${p.path ? `${p.path}: ` : ''}${p.message}`).join('\n'),
      `fix the fields above in ${file} (the JSON Schema from \`npm run lab:schema\` lets an editor check them)`,
      2,
    );
  }
}

/** A command that ran and failed: carries the command line, exit code and the tail of its output. */
export class CommandError extends LabError {
  constructor(
    readonly command: string,
    readonly commandExitCode: number | undefined,
    readonly outputTail: string,
    hint?: string,
  ) {
    const how = commandExitCode === undefined ? 'did not finish' : `exited ${commandExitCode}`;
    super(`command ${how}: ${command}${outputTail ? `\n${indent(outputTail)}` : ''}`, hint);
  }
}

export class MissingToolError extends LabError {
  constructor(readonly tools: { command: string; aptPackage: string }[]) {
    const packages = [...new Set(tools.map((t) => t.aptPackage))].sort();
    super(
      `missing host tools: ${tools.map((t) => t.command).join(', ')}`,
      `install them with: apt-get install -y ${packages.join(' ')}   (or: npm run doctor -- --install)`,
      3,
    );
  }
}

export class TimeoutError extends LabError {}

export class CancelledError extends LabError {
  constructor() {
    super('cancelled', undefined, 130);
  }
}

export function indent(text: string, prefix = '    '): string {
  return text
    .split('\n')
    .map((line) => prefix + line)
    .join('\n');
}

export function tailLines(text: string, lines = 20): string {
  const all = text.trimEnd().split('\n');
  return all.slice(-lines).join('\n');
}
