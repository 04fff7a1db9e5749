/**
 * Turns the root filesystem tarball into a bootable UEFI disk without loop devices or
 * mounts: GPT from sgdisk, ext4 filled by `mke2fs -d` straight from the tarball, a FAT ESP
 * filled with mtools, GRUB built by grub-mkimage. Every tool runs inside the tools layer (a
 * chroot of the same suite) so the disk does not depend on the build host's versions, and
 * every UUID, seed and timestamp is fixed so equal inputs give an equal disk.
 */
import { link, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../core/exec.ts';
import { sha256File } from '../core/hash.ts';
import { IMAGE_FILES } from '../core/paths.ts';
import { removeTree } from '../core/remove-tree.ts';
import { renderEspGrubConfig } from './boot-files.ts';
import { ESP_SIZE_MIB, GRUB_MODULES, planRootSizeMiB, type ImagePlan } from './recipe.ts';

export interface DiskLayout {
  espStartMiB: number;
  espSizeMiB: number;
  rootStartMiB: number;
  rootSizeMiB: number;
  /** Whole disk, including the backup GPT at the end. */
  totalMiB: number;
}

/** Partition layout (pure): 1 MiB for the GPT, the ESP, the root filesystem, 1 MiB for the backup GPT. */
export function planDiskLayout(rootfsTarBytes: number): DiskLayout {
  const rootSizeMiB = planRootSizeMiB(rootfsTarBytes);
  const espStartMiB = 1;
  const rootStartMiB = espStartMiB + ESP_SIZE_MIB;
  return { espStartMiB, espSizeMiB: ESP_SIZE_MIB, rootStartMiB, rootSizeMiB, totalMiB: rootStartMiB + rootSizeMiB + 1 };
}

export function renderSgdiskArgs(plan: ImagePlan, layout: DiskLayout, diskPath: string): string[] {
  const sectorsPerMiB = 2048;
  return [
    '--zap-all',
    `--disk-guid=${plan.diskGuid}`,
    `--new=1:${layout.espStartMiB * sectorsPerMiB}:+${layout.espSizeMiB}M`,
    '--typecode=1:ef00',
    `--partition-guid=1:${plan.espPartGuid}`,
    '--change-name=1:ESP',
    `--new=2:${layout.rootStartMiB * sectorsPerMiB}:+${layout.rootSizeMiB}M`,
    '--typecode=2:8304', // Linux x86-64 root (discoverable partitions)
    `--partition-guid=2:${plan.rootPartGuid}`,
    '--change-name=2:root',
    diskPath,
  ];
}

export interface BuildDiskOptions {
  plan: ImagePlan;
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

/** Runs a command inside the tools chroot. Paths must be relative to it. */
function inTools(toolsRoot: string, argv: string[], env: Record<string, string>, signal?: AbortSignal, logFile?: string) {
  const [cmd, ...args] = argv;
  return run('chroot', [toolsRoot, cmd!, ...args], { env, signal, logFile, hint: 'the disk tools run in the tools layer: rebuild it with `npm run image:build -- --rebuild`' });
}

export async function buildDisk(opts: BuildDiskOptions): Promise<BuiltDisk> {
  const { plan, toolsRoot } = opts;
  const epoch = String(plan.sourceDateEpoch);
  const env = { SOURCE_DATE_EPOCH: epoch, E2FSPROGS_FAKE_TIME: epoch, MTOOLS_SKIP_CHECK: '1', LC_ALL: 'C.UTF-8', TZ: 'UTC' };
  // A private work directory inside the chroot, so parallel builds never share files.
  const workName = `work-${process.pid}-${Date.now()}`;
  const work = join(toolsRoot, workName);
  const inside = (name: string) => `/${workName}/${name}`;
  await mkdir(work, { recursive: true });
  try {
    await link(opts.rootfsTar, join(work, 'rootfs.tar')).catch(() => run('cp', ['--reflink=auto', opts.rootfsTar, join(work, 'rootfs.tar')]));
    const layout = planDiskLayout((await stat(opts.rootfsTar)).size);
    const run_ = (argv: string[]) => inTools(toolsRoot, argv, env, opts.signal, opts.logFile);

    await run_(['mke2fs', '-q', '-t', 'ext4', '-b', '4096', '-L', 'root', '-U', plan.rootUuid,
      '-E', `hash_seed=${plan.rootUuid},root_owner=0:0`, '-d', inside('rootfs.tar'), inside('root.img'), `${layout.rootSizeMiB}M`]);

    await mkdir(join(work, 'esp/EFI/BOOT'), { recursive: true });
    await run_(['grub-mkimage', '-O', 'x86_64-efi', '-p', '/EFI/BOOT', '-o', inside('esp/EFI/BOOT/BOOTX64.EFI'), ...GRUB_MODULES]);
    await writeFile(join(work, 'esp/EFI/BOOT/grub.cfg'), renderEspGrubConfig(plan.rootUuid));
    await run_(['find', inside('esp'), '-exec', 'touch', '-h', '-d', `@${epoch}`, '{}', '+']);
    await run_(['mkfs.vfat', '-F', '32', '-n', 'ESP', '-i', plan.espVolumeId, '-C', inside('esp.img'), String(layout.espSizeMiB * 1024)]);
    await run_(['mcopy', '-s', '-p', '-m', '-i', inside('esp.img'), inside('esp/EFI'), '::/']);

    await run_(['truncate', '-s', `${layout.totalMiB}M`, inside('disk.raw')]);
    await run_(['sgdisk', ...renderSgdiskArgs(plan, layout, inside('disk.raw'))]);
    await run_(['dd', `if=${inside('esp.img')}`, `of=${inside('disk.raw')}`, 'bs=1M', `seek=${layout.espStartMiB}`, 'conv=notrunc,sparse', 'status=none']);
    await run_(['dd', `if=${inside('root.img')}`, `of=${inside('disk.raw')}`, 'bs=1M', `seek=${layout.rootStartMiB}`, 'conv=notrunc,sparse', 'status=none']);
    const hashes = {
      raw: await sha256File(join(work, 'disk.raw')),
      esp: await sha256File(join(work, 'esp.img')),
      root: await sha256File(join(work, 'root.img')),
    };
    await rm(join(work, 'root.img'));
    await rm(join(work, 'esp.img'));
    await rm(join(work, 'rootfs.tar'));
    // qcow2 for labs (fast to read) and a zstd-compressed qcow2 for distribution; one
    // coroutine keeps the cluster order, and so the file, deterministic.
    await run_(['qemu-img', 'convert', '-m', '1', '-f', 'raw', '-O', 'qcow2', inside('disk.raw'), inside(IMAGE_FILES.disk)]);
    await run_(['qemu-img', 'convert', '-m', '1', '-f', 'raw', '-O', 'qcow2', '-c', '-o', 'compression_type=zstd', inside('disk.raw'), inside(IMAGE_FILES.compressed)]);
    const rawBytes = (await stat(join(work, 'disk.raw'))).size;
    for (const name of [IMAGE_FILES.disk, IMAGE_FILES.compressed]) await rename(join(work, name), join(opts.outDir, name));
    return { layout, hashes, rawBytes };
  } finally {
    await removeTree(work);
  }
}
