/**
 * The disk layer's commands (pure): partition layout, and every command run in the tools chroot
 * to turn the root filesystem tarball into a UEFI disk. The layer's hash covers these commands
 * (at reference sizes: the root filesystem's real size is known once its layer exists, and follows
 * from that layer's hash), so changing any flag rebuilds the disk.
 */
import { IMAGE_FILES } from '../core/paths.ts';
import { GRUB_ENV_FILE, renderEspGrubConfig, renderGrubEnvBlock } from './boot-files.ts';

export const ESP_SIZE_MIB = 64;

/** GRUB modules built into the EFI binary (no module loading from disk). */
export const GRUB_MODULES = [
  'part_gpt', 'fat', 'ext2', 'normal', 'linux', 'search', 'search_fs_uuid', 'configfile',
  'echo', 'gzio', 'all_video', 'efi_gop', 'test', 'serial', 'terminal', 'sleep', 'loadenv',
] as const;

/** Where the disk build's private work directory appears inside the tools chroot (bind-mounted per command). */
export const DISK_WORK_MOUNT = '/mnt';

export interface DiskIds {
  rootUuid: string;
  espVolumeId: string;
  diskGuid: string;
  espPartGuid: string;
  rootPartGuid: string;
  sourceDateEpoch: number;
}

export interface DiskLayout {
  espStartMiB: number;
  espSizeMiB: number;
  rootStartMiB: number;
  rootSizeMiB: number;
  /** Whole disk, including the backup GPT at the end. */
  totalMiB: number;
}

/** Root filesystem size: the tree plus a quarter plus 256 MiB headroom, rounded up to 64 MiB. Grown on first boot. */
export function planRootSizeMiB(tarBytes: number): number {
  const mib = Math.ceil((tarBytes * 1.25) / 2 ** 20) + 256;
  return Math.ceil(mib / 64) * 64;
}

/** Partition layout: 1 MiB for the GPT, the ESP, the root filesystem, 1 MiB for the backup GPT. */
export function planDiskLayout(rootfsTarBytes: number): DiskLayout {
  const rootSizeMiB = planRootSizeMiB(rootfsTarBytes);
  const espStartMiB = 1;
  const rootStartMiB = espStartMiB + ESP_SIZE_MIB;
  return { espStartMiB, espSizeMiB: ESP_SIZE_MIB, rootStartMiB, rootSizeMiB, totalMiB: rootStartMiB + rootSizeMiB + 1 };
}

export function renderSgdiskArgs(ids: Pick<DiskIds, 'diskGuid' | 'espPartGuid' | 'rootPartGuid'>, layout: DiskLayout, diskPath: string): string[] {
  const sectorsPerMiB = 2048;
  return [
    '--zap-all',
    `--disk-guid=${ids.diskGuid}`,
    `--new=1:${layout.espStartMiB * sectorsPerMiB}:+${layout.espSizeMiB}M`,
    '--typecode=1:ef00',
    `--partition-guid=1:${ids.espPartGuid}`,
    '--change-name=1:ESP',
    `--new=2:${layout.rootStartMiB * sectorsPerMiB}:+${layout.rootSizeMiB}M`,
    '--typecode=2:8304', // Linux x86-64 root (discoverable partitions)
    `--partition-guid=2:${ids.rootPartGuid}`,
    '--change-name=2:root',
    diskPath,
  ];
}

/** One step of the disk build, in the work directory (paths inside the chroot for commands, relative to the work directory otherwise). */
export type DiskStep =
  | { run: string[] }
  | { write: string; content: string }
  | { hash: 'raw' | 'esp' | 'root'; file: string }
  | { remove: string }
  /** Copies the files the root filesystem's `/vmlinuz` and `/initrd.img` links name out of `rootfs.tar`. */
  | { bootFiles: { kernel: string; initrd: string } };

export interface DiskCommands {
  env: Record<string, string>;
  steps: DiskStep[];
  /** Files of the work directory that become the layer. */
  outputs: string[];
}

/** The work directory holds `rootfs.tar` (linked in) when the steps start. */
export function planDiskCommands(ids: DiskIds, layout: DiskLayout): DiskCommands {
  const epoch = String(ids.sourceDateEpoch);
  const w = (name: string) => `${DISK_WORK_MOUNT}/${name}`;
  return {
    env: { SOURCE_DATE_EPOCH: epoch, E2FSPROGS_FAKE_TIME: epoch, MTOOLS_SKIP_CHECK: '1', LC_ALL: 'C.UTF-8', TZ: 'UTC' },
    steps: [
      { run: ['mke2fs', '-q', '-t', 'ext4', '-b', '4096', '-L', 'root', '-U', ids.rootUuid, '-E', `hash_seed=${ids.rootUuid},root_owner=0:0`, '-d', w('rootfs.tar'), w('root.img'), `${layout.rootSizeMiB}M`] },
      { run: ['mkdir', '-p', w('esp/EFI/BOOT')] },
      { run: ['grub-mkimage', '-O', 'x86_64-efi', '-p', '/EFI/BOOT', '-o', w('esp/EFI/BOOT/BOOTX64.EFI'), ...GRUB_MODULES] },
      { write: 'esp/EFI/BOOT/grub.cfg', content: renderEspGrubConfig(ids.rootUuid) },
      // Empty: the image's own command line. A machine's (or a lab's) kernel options go there.
      { write: `esp/${GRUB_ENV_FILE}`, content: renderGrubEnvBlock({}) },
      { run: ['find', w('esp'), '-exec', 'touch', '-h', '-d', `@${epoch}`, '{}', '+'] },
      { run: ['mkfs.vfat', '-F', '32', '-n', 'ESP', '-i', ids.espVolumeId, '-C', w('esp.img'), String(layout.espSizeMiB * 1024)] },
      { run: ['mcopy', '-s', '-p', '-m', '-i', w('esp.img'), w('esp/EFI'), '::/'] },
      { run: ['truncate', '-s', `${layout.totalMiB}M`, w('disk.raw')] },
      { run: ['sgdisk', ...renderSgdiskArgs(ids, layout, w('disk.raw'))] },
      { run: ['dd', `if=${w('esp.img')}`, `of=${w('disk.raw')}`, 'bs=1M', `seek=${layout.espStartMiB}`, 'conv=notrunc,sparse', 'status=none'] },
      { run: ['dd', `if=${w('root.img')}`, `of=${w('disk.raw')}`, 'bs=1M', `seek=${layout.rootStartMiB}`, 'conv=notrunc,sparse', 'status=none'] },
      { hash: 'raw', file: 'disk.raw' },
      { hash: 'esp', file: 'esp.img' },
      { hash: 'root', file: 'root.img' },
      // The disk's own kernel and initramfs beside it: a lab can boot them directly (qemu -kernel),
      // skipping firmware and GRUB; the disk itself is unchanged and still boots by UEFI.
      { bootFiles: { kernel: IMAGE_FILES.kernel, initrd: IMAGE_FILES.initrd } },
      { remove: 'root.img' },
      { remove: 'esp.img' },
      { remove: 'rootfs.tar' },
      // qcow2 for labs (fast to read) and a zstd-compressed qcow2 for distribution; one
      // coroutine keeps the cluster order, and so the file, deterministic.
      { run: ['qemu-img', 'convert', '-m', '1', '-f', 'raw', '-O', 'qcow2', w('disk.raw'), w(IMAGE_FILES.disk)] },
      { run: ['qemu-img', 'convert', '-m', '1', '-f', 'raw', '-O', 'qcow2', '-c', '-o', 'compression_type=zstd', w('disk.raw'), w(IMAGE_FILES.compressed)] },
    ],
    outputs: [IMAGE_FILES.disk, IMAGE_FILES.compressed, IMAGE_FILES.kernel, IMAGE_FILES.initrd],
  };
}

/** What the disk layer's hash covers of its commands: the plan at two reference sizes, so every flag and every size rule is in it. */
export function diskCommandsFingerprint(ids: DiskIds): DiskCommands[] {
  return [planDiskCommands(ids, planDiskLayout(0)), planDiskCommands(ids, planDiskLayout(2 ** 30))];
}
