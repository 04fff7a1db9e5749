/**
 * The libvirt lab as data (pure): the same image and seed the qemu driver uses, as
 * provider resources. NAT mode pins the VM's address with a DHCP host entry, so the host
 * knows where to forward ports before the VM boots; bridge mode (the server profile) joins
 * an existing host bridge instead.
 */
import { formatIPv4, parseCidr } from '../../../core/cidr.ts';
import { sha256 } from '../../../core/hash.ts';
import { parseSize } from '../../../core/units.ts';
import type { SeedFiles } from '../../../cloud-init/user-data.ts';
import type { LabConfig } from '../../../config/lab-config.ts';
import type { LibvirtStackPlan } from './schema.ts';

export interface LibvirtStackInputs {
  config: LabConfig;
  accel: 'kvm' | 'tcg';
  baseImage: { path: string; hash: string };
  seed: SeedFiles;
  firmware: { code: string; varsTemplate: string };
}

/** A stable locally administered MAC for the lab's NIC (52:54:00 is qemu's prefix). */
export function labMac(labName: string): string {
  const h = sha256(`mac:${labName}`);
  return `52:54:00:${h.slice(0, 2)}:${h.slice(2, 4)}:${h.slice(4, 6)}`;
}

export interface NatAddressing {
  gateway: string;
  prefix: number;
  vm: string;
  rangeStart: string;
  rangeEnd: string;
}

/** Gateway .1, the VM .10, a small DHCP range above it. */
export function planNatAddressing(subnet: string): NatAddressing {
  const cidr = parseCidr(subnet);
  if (!cidr) throw new Error(`libvirt.subnet ${subnet} is not a CIDR`);
  return {
    gateway: formatIPv4(cidr.base + 1),
    prefix: cidr.prefix,
    vm: formatIPv4(cidr.base + 10),
    rangeStart: formatIPv4(cidr.base + 100),
    rangeEnd: formatIPv4(cidr.base + 200),
  };
}

export const libvirtNames = (lab: string) => ({
  domain: `labsmith-${lab}`,
  network: `labsmith-${lab}`,
  /** Linux interface names are at most 15 characters. */
  bridge: `lsb${sha256(`bridge:${lab}`).slice(0, 8)}`,
  overlay: `labsmith-${lab}-disk.qcow2`,
  seed: `labsmith-${lab}-seed.iso`,
  serialLog: `/var/log/libvirt/qemu/labsmith-${lab}-serial.log`,
  nvram: `/var/lib/libvirt/qemu/nvram/labsmith-${lab}_VARS.fd`,
});

export function planLibvirtStack(inputs: LibvirtStackInputs): LibvirtStackPlan {
  const { config } = inputs;
  const { pool, networkMode } = config.libvirt;
  const names = libvirtNames(config.name);
  const mac = labMac(config.name);
  const nat = networkMode === 'nat' ? planNatAddressing(config.libvirt.subnet) : undefined;
  const memoryMiB = Math.floor(parseSize(config.vm.memory)! / 2 ** 20);

  return {
    stackName: `labsmith-${config.name}`,
    provider: { uri: config.libvirt.uri },
    volumes: {
      // Uploaded once per lab; its name carries the image's inputs hash.
      base: {
        name: `labsmith-${config.name}-base-${inputs.baseImage.hash.slice(0, 16)}.qcow2`,
        pool,
        target: { format: { type: 'qcow2' } },
        create: { content: { url: inputs.baseImage.path } },
      },
      overlay: {
        name: names.overlay,
        pool,
        capacity: parseSize(config.vm.disk),
        target: { format: { type: 'qcow2' } },
        backing_store: { path: '${libvirt_volume.base.path}', format: { type: 'qcow2' } },
      },
      seed: {
        name: names.seed,
        pool,
        target: { format: { type: 'raw' } },
        create: { content: { url: '${libvirt_cloudinit_disk.seed.path}' } },
      },
    },
    cloudinitDisks: {
      seed: { name: `labsmith-${config.name}-seed`, user_data: inputs.seed['user-data'], meta_data: inputs.seed['meta-data'], network_config: inputs.seed['network-config'] },
    },
    networks: nat
      ? {
          lab: {
            name: names.network,
            autostart: true,
            forward: { mode: 'nat' },
            bridge: { name: names.bridge, stp: 'on' },
            domain: { name: `${config.name}.lab`, local_only: 'yes' },
            ips: [
              {
                address: nat.gateway,
                prefix: nat.prefix,
                family: 'ipv4',
                dhcp: { ranges: [{ start: nat.rangeStart, end: nat.rangeEnd }], hosts: [{ mac, ip: nat.vm, name: config.name }] },
              },
            ],
          },
        }
      : {},
    domains: {
      vm: {
        name: names.domain,
        description: `labsmith lab ${config.name}`,
        type: inputs.accel === 'kvm' ? 'kvm' : 'qemu',
        memory: memoryMiB,
        memory_unit: 'MiB',
        vcpu: config.vm.cpus,
        running: true,
        os: {
          type: 'hvm',
          type_arch: 'x86_64',
          type_machine: 'q35',
          loader: inputs.firmware.code,
          loader_readonly: 'yes',
          loader_type: 'pflash',
          nv_ram: { nv_ram: names.nvram, template: inputs.firmware.varsTemplate },
          boot_devices: [{ dev: 'hd' }],
        },
        cpu: { mode: inputs.accel === 'kvm' ? 'host-passthrough' : 'maximum' },
        devices: {
          disks: [
            {
              source: { volume: { pool, volume: '${libvirt_volume.overlay.name}' } },
              target: { dev: 'vda', bus: 'virtio' },
              driver: { name: 'qemu', type: 'qcow2', discard: 'unmap' },
            },
            {
              source: { volume: { pool, volume: '${libvirt_volume.seed.name}' } },
              target: { dev: 'vdb', bus: 'virtio' },
              driver: { name: 'qemu', type: 'raw' },
              read_only: true,
            },
          ],
          interfaces: [
            {
              mac: { address: mac },
              model: { type: 'virtio' },
              source: nat ? { network: { network: '${libvirt_network.lab.name}' } } : { bridge: { bridge: config.libvirt.bridge! } },
            },
          ],
          serials: [{ source: { file: { path: names.serialLog, append: 'off' } }, target: { port: 0 } }],
          rngs: [{ model: 'virtio', backend: { random: '/dev/urandom' } }],
        },
      },
    },
    interfaceAddresses: { vm: { domain: '${libvirt_domain.vm.name}', source: nat ? 'lease' : 'any' } },
    outputs: {
      ...(nat ? { vm_address: nat.vm } : {}),
      vm_interfaces: '${data.libvirt_domain_interface_addresses.vm.interfaces}',
    },
  };
}
