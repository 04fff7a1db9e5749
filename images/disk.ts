/**
 * Turns the root filesystem tarball into a bootable UEFI disk without loop devices or
 * mounts of the image: GPT from sgdisk, ext4 filled by `mke2fs -d` straight from the tarball, a
 * FAT ESP filled with mtools, GRUB built by grub-mkimage. Every tool runs inside the tools layer
 * (a chroot of the same suite) so the disk does not depend on the build host's versions, and
 * every UUID, seed and timestamp is fixed so equal inputs give an equal disk. The commands are
 * planned (disk-plan.ts); this runs them.
 *
 * The tools layer is shared and complete: nothing is ever written into it. The work directory
 * is the disk layer's private build directory, bind-mounted at /mnt inside the chroot in a mount
 * namespace of each command's own, so a build killed at any point leaves nothing in the layer
 * (the mount dies with the namespace).
 */
import { existsSync } from 'node:fs';
import { link, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LabError } from '../core/errors.ts';
import { run } from '../core/exec.ts';
import { sha256File } from '../core/hash.ts';
import { readTar } from '../core/tar.ts';
import { DISK_WORK_MOUNT, planDiskCommands, planDiskLayout, type DiskCommands, type DiskIds, type DiskLayout } from './disk-plan.ts';

export { planDiskLayout, renderSgdiskArgs, type DiskLayout } from './disk-plan.ts';

export interface BuildDiskOptions {
  plan: DiskIds;
  toolsRoot: string;
  rootfsTar: string;
  outDir: string;
  signal?: AbortSignal;
  logFile?: string;
}

export interface BuiltDisk {
  layout: DiskLayout;
  /** sha256 of the raw disk and of each partition's filesystem, for the reproducibility report. */
  hashes: { raw: string; esp: string; root: string };
  rawBytes: number;
}

// Bind the work directory over the chroot's /mnt in this command's own mount namespace, then chroot.
const BIND_AND_CHROOT = `work="$1"; root="$2"; shift 2; mount --bind "$work" "$root${DISK_WORK_MOUNT}" && exec chroot "$root" "$@"`;

/** The argv that runs one planned command in the tools chroot with `work` at /mnt (pure). */
export function renderToolsCommand(toolsRoot: string, work: string, argv: readonly string[]): string[] {
  return ['--mount', '--propagation', 'private', '--', 'sh', '-c', BIND_AND_CHROOT, 'sh', work, toolsRoot, ...argv];
}

/** Runs the planned disk commands with `work` (holding rootfs.tar) as the work directory. */
export async function runDiskCommands(commands: DiskCommands, toolsRoot: string, work: string, opts: { signal?: AbortSignal; logFile?: string } = {}): Promise<BuiltDisk['hashes']> {
  if (!existsSync(join(toolsRoot, DISK_WORK_MOUNT))) {
    throw new LabError(`the tools layer ${toolsRoot} has no ${DISK_WORK_MOUNT}`, 'rebuild it with `npm run image:build -- --rebuild`');
  }
  const hashes: Partial<BuiltDisk['hashes']> = {};
  for (const step of commands.steps) {
    if ('run' in step) {
      await run('unshare', renderToolsCommand(toolsRoot, work, step.run), {
        env: commands.env,
        signal: opts.signal,
        logFile: opts.logFile,
        hint: 'the disk tools run in the tools layer: rebuild it with `npm run image:build -- --rebuild`',
      });
    } else if ('write' in step) {
      await writeFile(join(work, step.write), step.content);
    } else if ('hash' in step) {
      hashes[step.hash] = await sha256File(join(work, step.file));
    } else if ('bootFiles' in step) {
      await extractBootFiles(join(work, 'rootfs.tar'), work, step.bootFiles);
    } else {
      await rm(join(work, step.remove));
    }
  }
  return hashes as BuiltDisk['hashes'];
}

/**
 * The kernel and initramfs the root filesystem's `/vmlinuz` and `/initrd.img` links name (the
 * ones GRUB loads), written to `out` under the given names.
 */
export async function extractBootFiles(rootfsTar: string, out: string, names: { kernel: string; initrd: string }): Promise<void> {
  const entries = await readTar(rootfsTar);
  const target = (link: string) => {
    const entry = entries.find((e) => e.path === link);
    if (entry?.type !== 'symlink') throw new LabError(`the root filesystem has no /${link} link`, 'the kernel package makes it: check linux-image-cloud-amd64 is in the recipe');
    return entry.linkTarget.replace(/^\.?\//, '');
  };
  const wanted = new Map([[target('vmlinuz'), names.kernel], [target('initrd.img'), names.initrd]]);
  const found = await readTar(rootfsTar, { readContent: (p) => wanted.has(p) });
  for (const [path, name] of wanted) {
    const content = found.find((e) => e.path === path && e.type === 'file')?.content;
    if (!content) throw new LabError(`the root filesystem's /${path} is missing or not a file`, 'rebuild the OS layer: npm run image:build -- --rebuild');
    await writeFile(join(out, name), content, { mode: 0o644 });
  }
}

export async function buildDisk(opts: BuildDiskOptions): Promise<BuiltDisk> {
  const { plan, toolsRoot } = opts;
  const work = join(opts.outDir, 'work');
  await mkdir(work, { recursive: true });
  await link(opts.rootfsTar, join(work, 'rootfs.tar')).catch(() => run('cp', ['--reflink=auto', opts.rootfsTar, join(work, 'rootfs.tar')]));
  const layout = planDiskLayout((await stat(opts.rootfsTar)).size);
  const commands = planDiskCommands(plan, layout);
  const hashes = await runDiskCommands(commands, toolsRoot, work, { signal: opts.signal, logFile: opts.logFile });
  const rawBytes = (await stat(join(work, 'disk.raw'))).size;
  for (const name of commands.outputs) await rename(join(work, name), join(opts.outDir, name));
  await rm(work, { recursive: true, force: true });
  return { layout, hashes, rawBytes };
}
