/** Driver lookup by the name users pass with --driver. */
import { LabError } from '../../core/errors.ts';
import type { LabDriver } from './driver.ts';
import { LibvirtDriver } from './libvirt/driver.ts';
import { QemuDriver } from './qemu.ts';

const DRIVERS: Record<string, () => LabDriver> = {
  qemu: () => new QemuDriver(),
  libvirt: () => new LibvirtDriver(),
};

export function getDriver(name: string): LabDriver {
  const make = DRIVERS[name];
  if (!make) throw new LabError(`unknown driver "${name}"`, `use one of: ${Object.keys(DRIVERS).join(', ')}`, 2);
  return make();
}
