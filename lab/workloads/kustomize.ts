/**
 * Host-side kustomize, to validate a kustomization before boot. The guest renders with the
 * image's own `kubectl kustomize` (the version lab:up applies with); the host's render is for
 * validation only. Debian ships kustomize as a program (trixie 5.6.0, forky 5.8.1): forky's is
 * fetched into the cache with the private apt root (core/private-apt.ts), being the nearer to
 * the kustomize that kubectl 1.37 embeds. An installed `kustomize` on PATH wins.
 *
 * Rendering goes through a wrapper kustomization in a temp dir that names the user's directory
 * as its one resource and asks for origin annotations: each rendered object then says which of
 * the user's files it came from, so problems name that file and line.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { LabError } from '../../core/errors.ts';
import { commandExists, run } from '../../core/exec.ts';
import { cacheRoot } from '../../core/paths.ts';
import { DEFAULT_DEBIAN_MIRROR, ensureDebianPackagesUnpacked } from '../../core/private-apt.ts';

export const KUSTOMIZE_SUITE = 'forky';
export const KUSTOMIZATION_FILES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'] as const;
/** The annotation kustomize's `buildMetadata: [originAnnotations]` adds; removed again after reading. */
export const ORIGIN_ANNOTATION = 'config.kubernetes.io/origin';

export interface HostKustomize {
  command: string;
  /** e.g. "Debian forky kustomize_5.8.1+ds-1" or "kustomize on PATH". */
  version: string;
}

export async function ensureHostKustomize(opts: { cacheDir?: string; mirror?: string; signal?: AbortSignal } = {}): Promise<HostKustomize> {
  if (await commandExists('kustomize')) return { command: 'kustomize', version: 'kustomize on PATH' };
  const dir = join(opts.cacheDir ?? cacheRoot(), 'host-tools', `kustomize-${KUSTOMIZE_SUITE}`);
  const mirror = opts.mirror ?? DEFAULT_DEBIAN_MIRROR;
  const unpacked = await ensureDebianPackagesUnpacked(dir, {
    suite: KUSTOMIZE_SUITE,
    packages: ['kustomize'],
    mirror,
    signal: opts.signal,
    hint: `kustomize comes from Debian ${KUSTOMIZE_SUITE} (${mirror}); the host needs apt and debian-archive-keyring`,
  });
  return { command: join(unpacked.root, 'usr', 'bin', 'kustomize'), version: `Debian ${KUSTOMIZE_SUITE} ${unpacked.debs.join(' ') || 'kustomize'}` };
}

/** The wrapper kustomization (pure): the user's directory as its resource, with origin annotations. */
export function renderWrapperKustomization(wrapperDir: string, sourceDir: string): string {
  return `# Written by labsmith: renders ${sourceDir} with the origin of every object.\nresources:\n  - ${JSON.stringify(relative(wrapperDir, sourceDir))}\nbuildMetadata: [originAnnotations]\n`;
}

/**
 * `kustomize build` of the directory. The output carries origin annotations, relative to
 * `wrapperDir` (removed by then, but resolving a path against it names the user's file).
 */
export async function buildKustomization(tool: HostKustomize, sourceDir: string, signal?: AbortSignal): Promise<{ text: string; wrapperDir: string }> {
  const wrapper = await mkdtemp(join(tmpdir(), 'labsmith-kustomize-'));
  try {
    await writeFile(join(wrapper, 'kustomization.yaml'), renderWrapperKustomization(wrapper, sourceDir));
    const r = await run(tool.command, ['build', wrapper], { signal, timeoutMs: 2 * 60_000, allowFailure: true });
    if (r.exitCode !== 0) {
      throw new LabError(`kustomize could not render ${sourceDir}: ${r.stderr.trim().replaceAll(wrapper, '<wrapper>')}`, `run: ${tool.command} build ${sourceDir}`, 2);
    }
    return { text: r.stdout, wrapperDir: wrapper };
  } finally {
    await rm(wrapper, { recursive: true, force: true });
  }
}

/** The origin path an object's annotation names, resolved against the wrapper (pure); undefined without one. */
export function originPathOf(annotation: string | undefined): string | undefined {
  const m = annotation && /^path:\s*(.+)$/m.exec(annotation);
  return m ? m[1]!.trim().replace(/^['"]|['"]$/g, '') : undefined;
}
