/** Terminal colour and cursor sequences (CSI …) and OSC titles: a report or a log file is read as plain text. */
const TERMINAL_SEQUENCE = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)/g;

export function withoutTerminalCodes(text: string): string {
  return text.replace(TERMINAL_SEQUENCE, '');
}
