/**
 * Runs the synthesized stack with OpenTofu if present, else Terraform. Fails fast with the
 * reason when neither binary nor the libvirt provider can be had; never waits on a prompt.
 */
import { LabError } from '../../../core/errors.ts';
import { commandExists, run, type RunResult } from '../../../core/exec.ts';
import { withoutTerminalCodes } from '../../../core/text.ts';
import { LIBVIRT_PROVIDER } from './cdktf.ts';

export interface TerraformBinary {
  command: 'tofu' | 'terraform';
}

export async function findTerraform(): Promise<TerraformBinary> {
  if (await commandExists('tofu')) return { command: 'tofu' };
  if (await commandExists('terraform')) return { command: 'terraform' };
  throw new LabError('neither OpenTofu (tofu) nor Terraform (terraform) is installed', 'install one of them for --driver libvirt, or use the default qemu driver');
}

// Non-interactive, no update checks phoning home.
const ENV = { TF_IN_AUTOMATION: '1', TF_INPUT: '0', CHECKPOINT_DISABLE: '1' };

/**
 * Under umask 077: terraform.tfstate (and its backup) hold the full user-data, the SSH host
 * private key and the lab CA key among it, so they are created 0600.
 */
function tf(bin: TerraformBinary, dir: string, args: string[], opts: { timeoutMs: number; signal?: AbortSignal }): Promise<RunResult> {
  return run('sh', ['-c', 'umask 077 && exec "$@"', 'sh', bin.command, `-chdir=${dir}`, ...args], { env: ENV, timeoutMs: opts.timeoutMs, signal: opts.signal, allowFailure: true });
}

/** The reason an `init` failed, in one line a user can act on (pure). */
export function explainInitFailure(output: string, bin: TerraformBinary): LabError {
  const registry = bin.command === 'tofu' ? 'registry.opentofu.org' : 'registry.terraform.io';
  const provider = `${LIBVIRT_PROVIDER.source} ${LIBVIRT_PROVIDER.version}`;
  const clean = withoutTerminalCodes(output).replace(/[│╷╵]/g, ' ');
  const unreachable = /could not connect to|no such host|i\/o timeout|connection refused|failed to request discovery document/i.test(clean);
  const detail = clean.split('\n').map((l) => l.trim()).find((l) => /Error:|could not connect|no such host/i.test(l)) ?? clean.trim().split('\n').pop() ?? '';
  return new LabError(
    unreachable ? `the libvirt provider ${provider} cannot be downloaded: ${registry} is unreachable (${detail})` : `${bin.command} init failed for the libvirt provider ${provider}: ${detail}`,
    `make the provider available offline (a provider_installation filesystem_mirror in the CLI config named by TF_CLI_CONFIG_FILE, filled with \`${bin.command} providers mirror\` where the registry is reachable), or use the default qemu driver`,
  );
}

export async function terraformInit(bin: TerraformBinary, dir: string, signal?: AbortSignal): Promise<void> {
  const r = await tf(bin, dir, ['init', '-input=false', '-no-color'], { timeoutMs: 180_000, signal });
  if (r.exitCode !== 0) throw explainInitFailure(`${r.stdout}\n${r.stderr}`, bin);
}

export async function terraformApply(bin: TerraformBinary, dir: string, signal?: AbortSignal): Promise<void> {
  const r = await tf(bin, dir, ['apply', '-input=false', '-no-color', '-auto-approve'], { timeoutMs: 20 * 60_000, signal });
  if (r.exitCode !== 0) throw new LabError(`${bin.command} apply failed: ${lastError(r)}`, `the full output: ${bin.command} -chdir=${dir} apply`);
}

export async function terraformDestroy(bin: TerraformBinary, dir: string, signal?: AbortSignal): Promise<void> {
  const r = await tf(bin, dir, ['destroy', '-input=false', '-no-color', '-auto-approve'], { timeoutMs: 10 * 60_000, signal });
  if (r.exitCode !== 0) throw new LabError(`${bin.command} destroy failed: ${lastError(r)}`, `inspect with: virsh list --all; ${bin.command} -chdir=${dir} destroy`);
}

export async function terraformOutputs(bin: TerraformBinary, dir: string): Promise<Record<string, unknown>> {
  const r = await tf(bin, dir, ['output', '-json'], { timeoutMs: 60_000 });
  if (r.exitCode !== 0) throw new LabError(`${bin.command} output failed: ${lastError(r)}`);
  const parsed = JSON.parse(r.stdout || '{}') as Record<string, { value: unknown }>;
  return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, v.value]));
}

function lastError(r: RunResult): string {
  const lines = `${r.stderr}\n${r.stdout}`.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.find((l) => l.startsWith('Error:')) ?? lines.pop() ?? `exit ${r.exitCode}`;
}
