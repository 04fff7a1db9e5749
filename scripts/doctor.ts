// npm run doctor -- [--install]
import { LabError } from '../core/errors.ts';
import { run } from '../core/exec.ts';
import { findMissingTools, HOST_TOOLS, renderAptInstallArgs } from '../core/host-tools.ts';
import { runMain } from '../core/main.ts';

runMain(
  {
    boolean: ['install'],
    usage: `
npm run doctor -- [--install]
  Lists missing host tools with the apt-get line; --install installs them (as root).`,
  },
  async ({ args, progress }) => {
    let missing = await findMissingTools();
    if (missing.length && args.install) {
      if (process.getuid?.() !== 0) throw new LabError('--install needs root', `run: sudo apt-get ${renderAptInstallArgs(missing).join(' ')}`);
      progress.start('Updating apt package lists');
      await run('apt-get', ['update'], { timeoutMs: 10 * 60_000 });
      progress.end(true);
      progress.start(`Installing ${[...new Set(missing.map((m) => m.aptPackage))].join(', ')}`);
      await run('apt-get', renderAptInstallArgs(missing), { env: { DEBIAN_FRONTEND: 'noninteractive' }, timeoutMs: 30 * 60_000 });
      progress.end(true);
      missing = await findMissingTools();
    }
    for (const tool of HOST_TOOLS) {
      const ok = !missing.includes(tool);
      process.stdout.write(`${ok ? '✓' : '✗'} ${tool.command.padEnd(36)} ${tool.aptPackage.padEnd(24)} ${tool.purpose}\n`);
    }
    if (missing.length) {
      throw new LabError(`${missing.length} host tool(s) missing`, `run: apt-get ${renderAptInstallArgs(missing).join(' ')}   (or npm run doctor -- --install as root)`, 3);
    }
    process.stdout.write('all host tools present\n');
  },
);
