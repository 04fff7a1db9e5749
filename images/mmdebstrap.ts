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

export const FILE_MIRROR_AUTOMOUNT = '/usr/share/mmdebstrap/hooks/file-mirror-automount';

export function renderMmdebstrapArgs(plan: MmdebstrapPlan): string[] {
  const [first, ...rest] = plan.sources;
  const localDebs = plan.packages.filter((p) => p.startsWith('/'));
  if (!first) throw new Error('mmdebstrap needs at least one apt source');
  const args = [
    '--mode=root',
    `--variant=${plan.variant}`,
    `--format=${plan.format}`,
    '--architectures=amd64',
    `--include=${plan.packages.filter((p) => !p.startsWith('/')).join(',')}`,
    // Local .deb files (the locked Kubernetes packages) each get their own option: mmdebstrap
    // does not split an argument that starts with a path.
    ...localDebs.map((p) => `--include=${p}`),
    // dpkg runs inside the chroot: mmdebstrap's own hook bind-mounts the files at the same path
    // there, and unmounts them before the customize hooks below.
    ...(localDebs.length ? [`--hook-dir=${FILE_MIRROR_AUTOMOUNT}`] : []),
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
