/**
 * The firmware's warmed variables: made once per firmware and machine by a real OVMF boot under
 * TCG on a blank disk, reused after that; a firmware that never reaches its boot options is
 * remembered and its labs start from the template.
 */
import test from 'ava';
import { existsSync } from 'node:fs';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OVMF_CODE, OVMF_VARS } from '../../lab/drivers/qemu.ts';
import { renderDiskArgs } from '../../lab/drivers/qemu-args.ts';
import { renderFirmwareBootArgs, uefiVarsForLab } from '../../lab/drivers/uefi-vars.ts';
import { missingCommand, testUnless, withTempDir } from '../helpers.ts';

const MACHINE = { accel: 'tcg' as const, cpus: 1, memoryMiB: 512 };
const noFirmware = missingCommand('qemu-system-x86_64', 'qemu-img') ?? (existsSync(OVMF_CODE) && existsSync(OVMF_VARS) ? undefined : `no ${OVMF_CODE}`);
const utf16 = (text: string) => Buffer.from(text, 'utf16le');

test("the firmware-only machine is the lab's, in the foreground, with nothing forwarded", (t) => {
  const args = renderFirmwareBootArgs({ firmwareCode: OVMF_CODE, machine: MACHINE }, '/d');
  t.false(args.includes('-daemonize'));
  t.false(args.some((a) => a.includes('hostfwd')));
  const disks = renderDiskArgs({ kind: 'uefi', firmwareCode: OVMF_CODE, firmwareVars: '/d/vars.fd' }, '/d/disk.qcow2', '/d/seed.raw');
  t.true(args.join(' ').includes(disks.join(' ')), 'the same disks in the same order: the same boot options');
  t.true(args.includes(`if=pflash,format=raw,unit=1,file=/d/vars.fd`));
});

testUnless(noFirmware, 'a warm store is made once by a firmware-only boot, then reused; the template is untouched', async (t) => {
  await withTempDir(async (cacheDir) => {
    const templateBefore = await readFile(OVMF_VARS);
    const warm = await uefiVarsForLab({ cacheDir, firmwareCode: OVMF_CODE, varsTemplate: OVMF_VARS, machine: MACHINE });
    t.not(warm, OVMF_VARS);
    t.true(warm.startsWith(join(cacheDir, 'uefi-vars')));
    const store = await readFile(warm);
    t.true(store.includes(utf16('BootOrder')), 'OVMF wrote its boot order');
    t.false(templateBefore.includes(utf16('BootOrder')));
    t.deepEqual(await readFile(OVMF_VARS), templateBefore);
    const first = await stat(warm);
    t.is(await uefiVarsForLab({ cacheDir, firmwareCode: OVMF_CODE, varsTemplate: OVMF_VARS, machine: MACHINE }), warm);
    t.is((await stat(warm)).ino, first.ino, 'the second lab reuses the store: no second boot');
    t.deepEqual((await readdir(join(cacheDir, 'uefi-vars'))).filter((f) => f.startsWith('.')), [], 'no scratch directory is left');
    // Another machine is another store.
    t.not(await uefiVarsForLab({ cacheDir, firmwareCode: OVMF_CODE, varsTemplate: OVMF_VARS, machine: { ...MACHINE, cpus: 2 } }), warm);
  });
});

testUnless(noFirmware, 'a firmware that never reaches its boot options is remembered: its labs start from the template', async (t) => {
  await withTempDir(async (cacheDir) => {
    const broken = join(cacheDir, 'broken-code.fd');
    await writeFile(broken, Buffer.alloc((await stat(OVMF_CODE)).size));
    const request = { cacheDir, firmwareCode: broken, varsTemplate: OVMF_VARS, machine: MACHINE, timeoutMs: 3000 };
    t.is(await uefiVarsForLab(request), OVMF_VARS);
    const failed = (await readdir(join(cacheDir, 'uefi-vars'))).filter((f) => f.endsWith('.failed'));
    t.is(failed.length, 1);
    t.regex(await readFile(join(cacheDir, 'uefi-vars', failed[0]!), 'utf8'), /OVMF tried no boot option \(no BdsDxe: .*\) within 3 s/);
    t.is(await uefiVarsForLab({ ...request, timeoutMs: 1 }), OVMF_VARS, 'remembered, not tried again');
  });
});
