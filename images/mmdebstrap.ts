/** mmdebstrap command lines (pure). */
import type { AptSource } from './recipe.ts';

export interface MmdebstrapPlan {
  variant: 'apt' | 'essential' | 'required' | 'important' | 'standard' | 'minbase';
  format: 'tar' | 'directory';
  packages: readonly string[];
  sources: AptSource[];
  output: string;
  dpkgOptions?: readonly string[];
  /** Directories copied into the new root before / after package installation. */
  syncInEarly?: string;
  syncInLate?: string;
  /** Executables run after installation with the root as $1. */
  customizeHooks?: string[];
}

export function renderSourceLine(s: AptSource): string {
  return `deb ${s.uri} ${s.suite} ${s.components.join(' ')}`;
}

export function renderMmdebstrapArgs(plan: MmdebstrapPlan): string[] {
  const [first, ...rest] = plan.sources;
  if (!first) throw new Error('mmdebstrap needs at least one apt source');
  const args = [
    '--mode=root',
    `--variant=${plan.variant}`,
    `--format=${plan.format}`,
    '--architectures=amd64',
    `--include=${plan.packages.join(',')}`,
    // Recommends would make the package set depend on what else the archive carries.
    '--aptopt=APT::Install-Recommends "false"',
  ];
  for (const option of plan.dpkgOptions ?? []) args.push(`--dpkgopt=${option}`);
  if (plan.syncInEarly) args.push(`--setup-hook=sync-in ${plan.syncInEarly} /`);
  if (plan.syncInLate) args.push(`--customize-hook=sync-in ${plan.syncInLate} /`);
  for (const hook of plan.customizeHooks ?? []) args.push(`--customize-hook=${hook}`);
  args.push(first.suite, plan.output, renderSourceLine(first), ...rest.map(renderSourceLine));
  return args;
}
