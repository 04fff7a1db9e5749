/**
 * mmdebstrap runs: the command line (pure), the planned run a layer's hash covers, and the
 * runner that executes exactly that plan in the layer's private build directory.
 */
import { chmod, copyFile, link, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { LabError } from '../core/errors.ts';
import { run as runCommand } from '../core/exec.ts';
import { removeTree } from '../core/remove-tree.ts';
import type { FileSpec } from './boot-files.ts';

export interface AptSource {
  uri: string;
  suite: string;
  components: string[];
}

export interface MmdebstrapArgs {
  variant: 'apt' | 'essential' | 'required' | 'important' | 'standard' | 'minbase';
  format: 'tar' | 'directory';
  packages: readonly string[];
  sources: AptSource[];
  output: string;
  dpkgOptions?: readonly string[];
  /** Directories copied into the new root before / after package installation. */
  syncInEarly?: string;
  syncInLate?: string;
  /** Executables run with the root as $1: after the essential packages (apt's lists are there), after installation. */
  essentialHooks?: string[];
  customizeHooks?: string[];
}

export function renderSourceLine(s: AptSource): string {
  return `deb ${s.uri} ${s.suite} ${s.components.join(' ')}`;
}

export const FILE_MIRROR_AUTOMOUNT = '/usr/share/mmdebstrap/hooks/file-mirror-automount';

export function renderMmdebstrapArgs(plan: MmdebstrapArgs): string[] {
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
  for (const hook of plan.essentialHooks ?? []) args.push(`--essential-hook=${hook}`);
  if (plan.syncInLate) args.push(`--customize-hook=sync-in ${plan.syncInLate} /`);
  for (const hook of plan.customizeHooks ?? []) args.push(`--customize-hook=${hook}`);
  args.push(first.suite, plan.output, renderSourceLine(first), ...rest.map(renderSourceLine));
  return args;
}

/**
 * Stands for the layer's private build directory in a planned run: the plan (and so the layer
 * hash) cannot hold a per-process path, so the runner substitutes this one prefix and nothing else.
 */
export const BUILD_DIR = '/@labsmith-build-dir@';

/**
 * Stands for a private directory under the host's /tmp for files the chroot must see at the same
 * path (local .deb files): mmdebstrap's file-mirror-automount leaves their mount points (empty
 * files and directories) in the tree, and /tmp is the one place mmdebstrap empties afterwards.
 */
export const STAGING_DIR = '/tmp/@labsmith-staging-dir@';

/** A locked input placed into the build directory; the runner gets its host file from the resolved inputs. */
export type PlannedInput =
  | { kind: 'keyring'; sha256: string; fingerprint: string }
  | { kind: 'deb'; name: string; version: string; sha256: string; key?: string }
  | { kind: 'image'; ref: string; digest: string; key?: string };

/** Everything one mmdebstrap run is: a layer's hash covers all of it. */
export interface MmdebstrapRun {
  argv: string[];
  env: Record<string, string>;
  /** Rendered files written under the build directory first (path relative to it). */
  files: Record<string, FileSpec>;
  /** Locked inputs placed under the build directory (path relative to it), or under STAGING_DIR. */
  inputs: Record<string, PlannedInput>;
  /** Top-level entries of the build directory removed after the run (hooks, staged inputs). */
  scratch: string[];
}

/** The argv as executed in `buildDir` (and `stagingDir`) (pure). */
export function bindBuildDir(argv: readonly string[], buildDir: string, stagingDir = STAGING_DIR): string[] {
  return argv.map((a) => a.split(BUILD_DIR).join(buildDir).split(STAGING_DIR).join(stagingDir));
}

/** Host files of the locked inputs a run places (from resolveLockedInputs); checksums were verified there. */
export interface InputFiles {
  keyring?: string;
  debs: Record<string, string>;
  images: Record<string, string>;
}

export type Exec = typeof runCommand;

export interface RunMmdebstrapOptions {
  signal?: AbortSignal;
  /** Places the keyring: checks the pinned fingerprint and writes a binary keyring (images/kubernetes/repository.ts). */
  placeKeyring?: (keyFile: string, fingerprint: string, out: string) => Promise<void>;
  /** The command seam (core/exec.ts); tests pass a recorder to compare the executed argv with the plan. */
  exec?: Exec;
}

/** Executes exactly the planned run in `buildDir`; the output is wherever the plan's argv puts it. */
export async function runPlannedMmdebstrap(planned: MmdebstrapRun, buildDir: string, inputs: InputFiles, opts: RunMmdebstrapOptions = {}): Promise<void> {
  for (const [path, spec] of Object.entries(planned.files)) {
    const target = join(buildDir, path);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, spec.content);
    await chmod(target, spec.mode);
  }
  const staged = Object.keys(planned.inputs).some((p) => p.startsWith(`${STAGING_DIR}/`));
  const stagingDir = staged ? await mkdtemp('/tmp/labsmith-staging-') : STAGING_DIR;
  try {
    await placeInputs(planned, buildDir, stagingDir, inputs, opts);
    await execPlanned(planned, buildDir, stagingDir, opts);
  } finally {
    if (staged) await removeTree(stagingDir);
  }
  for (const entry of planned.scratch) await removeTree(join(buildDir, entry));
}

async function placeInputs(planned: MmdebstrapRun, buildDir: string, stagingDir: string, inputs: InputFiles, opts: RunMmdebstrapOptions): Promise<void> {
  for (const [path, input] of Object.entries(planned.inputs)) {
    const target = path.startsWith(`${STAGING_DIR}/`) ? stagingDir + path.slice(STAGING_DIR.length) : join(buildDir, path);
    await mkdir(dirname(target), { recursive: true });
    if (input.kind === 'keyring') {
      if (!inputs.keyring || !opts.placeKeyring) throw new Error('the planned run needs the Kubernetes keyring, which was not resolved');
      await opts.placeKeyring(inputs.keyring, input.fingerprint, target);
      await chmod(target, 0o644);
    } else {
      // `key`: staged upgrade inputs are resolved under their own keys (the target's kubeadm is not the image's).
      const from = input.kind === 'deb' ? inputs.debs[input.key ?? input.name] : inputs.images[input.key ?? input.ref];
      if (!from) throw new Error(`the planned run needs ${input.kind === 'deb' ? input.name : input.ref}, which was not resolved`);
      await link(from, target).catch(() => copyFile(from, target));
    }
  }
}

async function execPlanned(planned: MmdebstrapRun, buildDir: string, stagingDir: string, opts: RunMmdebstrapOptions): Promise<void> {
  const exec = opts.exec ?? runCommand;
  const logFile = join(buildDir, 'build.log');
  try {
    await exec('mmdebstrap', bindBuildDir(planned.argv, buildDir, stagingDir), { env: planned.env, signal: opts.signal, logFile });
  } catch (error) {
    const moved = (await readFile(logFile, 'utf8').catch(() => '')).split('\n').filter((l) => l.startsWith('labsmith: the Debian mirror moved during the build') || l.startsWith('labsmith: apt downloaded no InRelease'));
    if (moved.length) {
      throw new LabError(
        `the Debian mirror moved during the build (nothing was cached):\n${moved.map((l) => `  - ${l.replace(/^labsmith: (the Debian mirror moved during the build: )?/, '')}`).join('\n')}`,
        'the mirror published a new state after the lock was checked: run `npm run image:lock` to take it (it prints what changed), then build again',
      );
    }
    throw error;
  }
}
