/**
 * The slice of the dmacvicar/libvirt 0.9.x provider schema the lab uses, as TypeScript types
 * with the provider's own snake_case attribute names (checked against its v0.9.7 docs).
 * Values may be Terraform references such as "${libvirt_volume.base.path}".
 */

export interface LibvirtProviderConfig {
  uri: string;
}

export interface VolumeFormat {
  type: 'qcow2' | 'raw';
}

export interface LibvirtVolume {
  name: string;
  pool: string;
  capacity?: number;
  target?: { format: VolumeFormat };
  backing_store?: { path: string; format: VolumeFormat };
  create?: { content: { url: string } };
}

export interface LibvirtCloudinitDisk {
  name: string;
  user_data: string;
  meta_data: string;
  network_config?: string;
}

export interface LibvirtNetwork {
  name: string;
  autostart?: boolean;
  forward?: { mode: 'nat' | 'route' | 'open' | 'bridge' };
  bridge?: { name?: string; stp?: string };
  domain?: { name: string; local_only?: string };
  dns?: { enable?: string };
  ips?: {
    address: string;
    prefix: number;
    family?: 'ipv4' | 'ipv6';
    dhcp?: { ranges?: { start: string; end: string }[]; hosts?: { mac: string; ip: string; name?: string }[] };
  }[];
}

export interface DomainDisk {
  device?: 'disk' | 'cdrom';
  source: { file?: { file: string }; volume?: { pool: string; volume: string } };
  target: { dev: string; bus: 'virtio' | 'sata' | 'scsi' };
  driver?: { name?: 'qemu'; type?: 'qcow2' | 'raw'; discard?: 'unmap' | 'ignore' };
  read_only?: boolean;
}

export interface DomainInterface {
  mac?: { address: string };
  model: { type: 'virtio' };
  source: { network?: { network: string }; bridge?: { bridge: string } };
}

export interface LibvirtDomain {
  name: string;
  type: 'kvm' | 'qemu';
  memory: number;
  memory_unit: 'MiB';
  vcpu: number;
  running: boolean;
  autostart?: boolean;
  description?: string;
  os: {
    type: 'hvm';
    type_arch: 'x86_64';
    type_machine: 'q35';
    firmware?: 'efi';
    loader?: string;
    loader_readonly?: string;
    loader_type?: 'pflash';
    nv_ram?: { nv_ram: string; template?: string };
    boot_devices?: { dev: 'hd' | 'cdrom' | 'network' }[];
  };
  cpu?: { mode: 'host-passthrough' | 'host-model' | 'maximum' };
  devices: {
    disks: DomainDisk[];
    interfaces: DomainInterface[];
    serials?: { source: { file: { path: string; append?: string } }; target?: { type?: string; port?: number } }[];
    rngs?: { model: 'virtio'; backend: { random: string } }[];
  };
}

export interface DomainInterfaceAddressesData {
  domain: string;
  source?: 'lease' | 'agent' | 'any';
}

/** One stack, in the provider's own terms: what `cdktf.ts` turns into Terraform JSON. */
export interface LibvirtStackPlan {
  stackName: string;
  provider: LibvirtProviderConfig;
  volumes: Record<string, LibvirtVolume>;
  cloudinitDisks: Record<string, LibvirtCloudinitDisk>;
  networks: Record<string, LibvirtNetwork>;
  domains: Record<string, LibvirtDomain>;
  interfaceAddresses: Record<string, DomainInterfaceAddressesData>;
  outputs: Record<string, string>;
}
