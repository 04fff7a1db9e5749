/**
 * A lab's kernel options on the UEFI path: the GRUB environment block on the ESP (rendered, parsed,
 * checked against grub-editenv and grub-script-check), found and rewritten in a lab's overlay with
 * qemu-img and qemu-io on a real FAT filesystem, the base image left as it was.
 */
import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../core/exec.ts';
import {
  GRUB_ENV_BYTES, GRUB_ENV_FILE, KERNEL_OPTIONS_VARIABLE, LAB_KERNEL_OPTIONS, locateGrubEnvBlocks, parseGrubEnvBlock,
  renderEspGrubConfig, renderGrubEnvBlock, renderLateRootfsFiles,
} from '../../images/boot-files.ts';
import { writeKernelOptions } from '../../lab/drivers/kernel-options.ts';
import { IMAGE_LIKE_ESP_MIB, imageLikeBaseImage, imageLikeDisk, missingCommand, testUnless, withTempDir } from '../helpers.ts';

const MiB = 2 ** 20;
const OPTIONS = { [KERNEL_OPTIONS_VARIABLE]: 'fsck.mode=skip cryptomgr.notests=1' };

test('the environment block reads back what was rendered, and refuses what GRUB would misread', (t) => {
  const empty = renderGrubEnvBlock({});
  t.is(Buffer.byteLength(empty), GRUB_ENV_BYTES);
  t.deepEqual(parseGrubEnvBlock(Buffer.from(empty)), {});
  t.deepEqual(parseGrubEnvBlock(Buffer.from(renderGrubEnvBlock(OPTIONS))), OPTIONS);
  t.throws(() => renderGrubEnvBlock({ 'kernel-options': 'x' }), { message: /"kernel-options" is not a plain identifier/ });
  t.throws(() => renderGrubEnvBlock({ a: 'one\ntwo' }), { message: /GRUB variable a: a backslash or newline/ });
  t.throws(() => renderGrubEnvBlock({ a: 'x'.repeat(GRUB_ENV_BYTES) }), { message: /holds 1024 bytes; its variables need 1121/ });
  // What is not a block: GRUB's own binary names the header too, followed by anything but a block.
  t.is(parseGrubEnvBlock(Buffer.from('# GRUB Environment Block\n\0\0\0'.padEnd(GRUB_ENV_BYTES, '\0'))), undefined);
  t.is(parseGrubEnvBlock(Buffer.from(empty).subarray(0, 512)), undefined);
});

testUnless(missingCommand('grub-editenv'), 'the block is byte for byte what grub-editenv writes, empty and with the options set', async (t) => {
  await withTempDir(async (dir) => {
    const file = join(dir, 'grubenv');
    await run('grub-editenv', [file, 'create']);
    t.is(await readFile(file, 'latin1'), renderGrubEnvBlock({}));
    await run('grub-editenv', [file, 'set', `${KERNEL_OPTIONS_VARIABLE}=${OPTIONS[KERNEL_OPTIONS_VARIABLE]}`]);
    t.is(await readFile(file, 'latin1'), renderGrubEnvBlock(OPTIONS));
  });
});

testUnless(missingCommand('grub-script-check'), "both grub.cfg files are GRUB script; the ESP's loads only the options variable and the kernel line appends it", async (t) => {
  await withTempDir(async (dir) => {
    const esp = renderEspGrubConfig('11111111-2222-4333-8444-555555555555');
    const root = renderLateRootfsFiles({ rootUuid: '11111111-2222-4333-8444-555555555555', espVolumeId: '1A2B3C4D' })['boot/grub/grub.cfg']!.content;
    for (const [name, text] of Object.entries({ esp, root })) {
      await writeFile(join(dir, name), text);
      const check = await run('grub-script-check', [join(dir, name)], { allowFailure: true });
      t.is(check.exitCode, 0, `${name}: ${check.stdout}${check.stderr}`);
    }
    const espLines = esp.split('\n');
    t.is(espLines[0], `load_env --file $prefix/${GRUB_ENV_FILE.split('/').pop()} ${KERNEL_OPTIONS_VARIABLE}`, 'a whitelist of one variable: the block cannot set prefix, root or anything else');
    t.is(espLines[1], `export ${KERNEL_OPTIONS_VARIABLE}`, 'configfile passes on only exported variables');
    t.true(espLines.indexOf('configfile /boot/grub/grub.cfg') > 1);
    t.regex(root, new RegExp(`^  linux /vmlinuz root=UUID=\\S+ .* \\$${KERNEL_OPTIONS_VARIABLE}$`, 'm'));
  });
});

testUnless(missingCommand('sgdisk', 'mkfs.vfat', 'mmd', 'mcopy', 'mtype', 'qemu-img', 'qemu-io'), "a lab overlay's ESP gets the options in place; the base image keeps its empty block", async (t) => {
  await withTempDir(async (dir) => {
    // An ESP as the disk layer makes it, with GRUB's binary stood in for by a file that holds the
    // header string at a sector boundary (as loadenv's code in BOOTX64.EFI could).
    const decoy = Buffer.concat([Buffer.alloc(512, 0x90), Buffer.from('# GRUB Environment Block\n'), Buffer.alloc(2048, 0)]);
    const base = await imageLikeBaseImage(dir, { 'BOOTX64.EFI': decoy, grubenv: renderGrubEnvBlock({}) });
    const baseBefore = await readFile(base);
    const overlay = join(dir, 'overlay.qcow2');
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', base, overlay, String(200 * MiB)]);

    t.is(await writeKernelOptions({ baseImage: base, overlay, options: LAB_KERNEL_OPTIONS, workDir: dir }), LAB_KERNEL_OPTIONS);

    // Read back as the guest's firmware and GRUB would: the FAT file, through mtools.
    const readEsp = async (disk: string, name: string) => {
      const out = join(dir, name);
      await run('qemu-img', ['dd', '-f', 'qcow2', '-O', 'raw', 'bs=1M', `skip=${IMAGE_LIKE_ESP_MIB.start}`, `count=${IMAGE_LIKE_ESP_MIB.start + IMAGE_LIKE_ESP_MIB.size}`, `if=${disk}`, `of=${out}`]);
      return (await run('mtype', ['-i', out, `::/${GRUB_ENV_FILE}`], { env: { MTOOLS_SKIP_CHECK: '1' } })).stdout;
    };
    t.is(await readEsp(overlay, 'overlay-esp.img'), renderGrubEnvBlock({ [KERNEL_OPTIONS_VARIABLE]: LAB_KERNEL_OPTIONS }));
    t.is(await readEsp(base, 'base-esp.img'), renderGrubEnvBlock({}));
    t.deepEqual(await readFile(base), baseBefore, 'the base image is untouched');
    t.deepEqual(locateGrubEnvBlocks(decoy), [], 'the header alone is not a block');

    // An image without the block (built by an older labsmith) is named, with what to do.
    const bare = join(dir, 'bare.qcow2');
    await imageLikeDisk(join(dir, 'bare.raw'));
    await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', join(dir, 'bare.raw'), bare]);
    const error = await t.throwsAsync(writeKernelOptions({ baseImage: bare, overlay, options: LAB_KERNEL_OPTIONS, workDir: dir }));
    t.regex(error!.message, /expected one GRUB environment block \(EFI\/BOOT\/grubenv\) on the ESP, found 0/);
  });
});
