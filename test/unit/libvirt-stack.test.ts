/**
 * The synthesized Terraform JSON for the libvirt driver: golden shape for the default lab
 * and edge cases, every attribute checked against the provider's own v0.9.7 docs, and a
 * real `terraform init` that must fail fast, naming the provider, where the registry is unreachable.
 */
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { LabError } from '../../core/errors.ts';
import { synthesizeLibvirtStack } from '../../lab/drivers/libvirt/cdktf.ts';
import { LibvirtDriver } from '../../lab/drivers/libvirt/driver.ts';
import { labMac, planLibvirtStack, planNatAddressing } from '../../lab/drivers/libvirt/stack.ts';
import { explainInitFailure, findTerraform, terraformInit } from '../../lab/drivers/libvirt/terraform.ts';
import { parseLabConfig } from '../../config/load.ts';
import type { LabConfig } from '../../config/lab-config.ts';
import { missingCommand, NEUTRAL_HOST, testUnless, withTempDir } from '../helpers.ts';

const DOCS = resolve('..', 'shared', 'upstream', 'libvirt-provider-v0.9.7-docs');
const seed = { 'user-data': '#cloud-config\nhostname: lab\n', 'meta-data': 'instance-id: lab-1\n', 'network-config': 'version: 2\n' };
const firmware = { code: '/usr/share/OVMF/OVMF_CODE_4M.fd', varsTemplate: '/usr/share/OVMF/OVMF_VARS_4M.fd' };

function config(yaml = ''): LabConfig {
  const r = parseLabConfig(`name: lab\n${yaml}`, NEUTRAL_HOST, '/state');
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.config;
}

async function synth(cfg: LabConfig, accel: 'kvm' | 'tcg' = 'tcg') {
  return withTempDir(async (dir) => synthesizeLibvirtStack(planLibvirtStack({ config: cfg, accel, baseImage: { path: '/cache/disk.qcow2', hash: 'ab'.repeat(32) }, seed, firmware }), dir).json) as Promise<Record<string, any>>;
}

test('default lab: NAT network with a pinned DHCP host, overlay on the uploaded base, UEFI q35 domain (golden)', async (t) => {
  const json = await synth(config());
  const r = json.resource;
  t.deepEqual(json.terraform.required_providers, { libvirt: { source: 'dmacvicar/libvirt', version: '0.9.7' } });
  t.deepEqual(json.terraform.backend, { local: { path: 'terraform.tfstate' } });
  t.deepEqual(json.provider.libvirt, [{ uri: 'qemu:///system' }]);
  t.deepEqual(Object.keys(r).sort(), ['libvirt_cloudinit_disk', 'libvirt_domain', 'libvirt_network', 'libvirt_volume']);
  const strip = ({ '//': _, ...rest }: Record<string, unknown>) => rest;
  t.deepEqual(strip(r.libvirt_volume.overlay), {
    name: 'labsmith-lab-disk.qcow2',
    pool: 'default',
    capacity: 20 * 1024 ** 3,
    target: { format: { type: 'qcow2' } },
    backing_store: { path: '${libvirt_volume.base.path}', format: { type: 'qcow2' } },
  });
  t.is(r.libvirt_volume.base.create.content.url, '/cache/disk.qcow2');
  t.is(r.libvirt_volume.seed.create.content.url, '${libvirt_cloudinit_disk.seed.path}');
  t.deepEqual(strip(r.libvirt_cloudinit_disk.seed), { name: 'labsmith-lab-seed', user_data: seed['user-data'], meta_data: seed['meta-data'], network_config: seed['network-config'] });
  const net = r.libvirt_network.lab;
  t.deepEqual(net.forward, { mode: 'nat' });
  t.deepEqual(net.ips, [{ address: '192.168.150.1', prefix: 24, family: 'ipv4', dhcp: { ranges: [{ start: '192.168.150.100', end: '192.168.150.200' }], hosts: [{ mac: labMac('lab'), ip: '192.168.150.10', name: 'lab' }] } }]);
  const dom = r.libvirt_domain.vm;
  t.is(dom.type, 'qemu');
  t.is(dom.memory, 4096);
  t.is(dom.memory_unit, 'MiB');
  t.is(dom.vcpu, 2);
  t.is(dom.running, true);
  t.is(dom.os.type_machine, 'q35');
  t.is(dom.os.loader, firmware.code);
  t.is(dom.os.nv_ram.template, firmware.varsTemplate);
  t.deepEqual(dom.devices.disks.map((d: any) => [d.target.dev, d.source.volume.volume, d.driver.type]), [['vda', '${libvirt_volume.overlay.name}', 'qcow2'], ['vdb', '${libvirt_volume.seed.name}', 'raw']]);
  t.deepEqual(dom.devices.interfaces[0].source, { network: { network: '${libvirt_network.lab.name}' } });
  t.is(dom.devices.serials[0].source.file.path, '/var/log/libvirt/qemu/labsmith-lab-serial.log');
  t.deepEqual(json.data.libvirt_domain_interface_addresses.vm.domain, '${libvirt_domain.vm.name}');
  t.is(json.output.vm_address.value, '192.168.150.10');
});

test('kvm vs qemu: domain type and CPU mode follow the accelerator', async (t) => {
  const kvm = (await synth(config(), 'kvm')).resource.libvirt_domain.vm;
  t.is(kvm.type, 'kvm');
  t.deepEqual(kvm.cpu, { mode: 'host-passthrough' });
  const tcg = (await synth(config(), 'tcg')).resource.libvirt_domain.vm;
  t.deepEqual(tcg.cpu, { mode: 'maximum' });
});

test('custom network and the bridged server profile', async (t) => {
  const custom = await synth(config('libvirt: { subnet: 172.30.7.0/24, pool: labs }\nvm: { disk: 200GiB, memory: 16GiB, cpus: 8 }\n'));
  t.is(custom.resource.libvirt_network.lab.ips[0].address, '172.30.7.1');
  t.is(custom.resource.libvirt_volume.overlay.pool, 'labs');
  t.is(custom.resource.libvirt_volume.overlay.capacity, 200 * 1024 ** 3);
  t.is(custom.resource.libvirt_domain.vm.memory, 16384);
  t.deepEqual(planNatAddressing('172.30.7.0/24'), { gateway: '172.30.7.1', prefix: 24, vm: '172.30.7.10', rangeStart: '172.30.7.100', rangeEnd: '172.30.7.200' });

  const bridged = await synth(config('libvirt: { networkMode: bridge, bridge: br0 }\n'));
  t.is(bridged.resource.libvirt_network, undefined, 'no lab network on a bridge');
  t.deepEqual(bridged.resource.libvirt_domain.vm.devices.interfaces[0].source, { bridge: { bridge: 'br0' } });
  t.is(bridged.output.vm_address, undefined);
});

/** Attribute names per schema path, read from the provider's generated docs. */
function docAttributes(file: string): Map<string, Set<string>> {
  const text = readFileSync(join(DOCS, file), 'utf8');
  const byPath = new Map<string, Set<string>>();
  let current = '';
  for (const line of text.split('\n')) {
    const nested = /^### Nested Schema for `([^`]+)`/.exec(line);
    if (nested) current = nested[1]!;
    else if (/^## Schema/.test(line)) current = '';
    const attr = /^- `([a-z0-9_]+)` \(/.exec(line);
    if (attr) {
      if (!byPath.has(current)) byPath.set(current, new Set());
      byPath.get(current)!.add(attr[1]!);
    }
  }
  return byPath;
}

function undocumented(value: unknown, docs: Map<string, Set<string>>, path = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((v) => undocumented(v, docs, path));
  if (!value || typeof value !== 'object') return [];
  const out: string[] = [];
  for (const [key, v] of Object.entries(value)) {
    if (key === '//') continue;
    if (!docs.get(path)?.has(key)) out.push(path ? `${path}.${key}` : key);
    else out.push(...undocumented(v, docs, path ? `${path}.${key}` : key));
  }
  return out;
}

testUnless(existsSync(DOCS) ? undefined : `provider docs not found at ${DOCS}`, 'every synthesized attribute exists in the provider v0.9.7 docs', async (t) => {
  for (const cfg of [config(), config('libvirt: { networkMode: bridge, bridge: br0 }\n')]) {
    const json = await synth(cfg, 'kvm');
    const files: Record<string, string> = { libvirt_volume: 'volume.md', libvirt_cloudinit_disk: 'cloudinit_disk.md', libvirt_network: 'network.md', libvirt_domain: 'domain.md' };
    for (const [type, resources] of Object.entries(json.resource as Record<string, Record<string, unknown>>)) {
      const docs = docAttributes(files[type]!);
      for (const [name, attrs] of Object.entries(resources)) t.deepEqual(undocumented(attrs, docs), [], `${type}.${name}`);
    }
    const dataDocs = docAttributes('data-domain_interface_addresses.md');
    t.deepEqual(undocumented(json.data.libvirt_domain_interface_addresses.vm, dataDocs), []);
  }
  // The check itself can fail: a misspelt attribute is caught.
  t.deepEqual(undocumented({ name: 'x', memory_units: 'MiB' }, docAttributes('domain.md')), ['memory_units']);
});

test('init failures are explained: unreachable registry vs other errors', (t) => {
  const offline = explainInitFailure('Error: Failed to query available provider packages\ncould not connect to registry.terraform.io: failed to request discovery document: dial tcp: lookup registry.terraform.io: no such host', { command: 'terraform' });
  t.regex(offline.message, /the libvirt provider dmacvicar\/libvirt 0.9.7 cannot be downloaded: registry.terraform.io is unreachable/);
  t.regex(offline.hint!, /filesystem_mirror/);
  const other = explainInitFailure('Error: Unsupported Terraform Core version', { command: 'tofu' });
  t.regex(other.message, /^tofu init failed for the libvirt provider/);
});

const noTerraform = missingCommand('terraform') && missingCommand('tofu') ? 'neither terraform nor tofu is installed' : undefined;

testUnless(noTerraform, 'lab:up --driver libvirt fails fast with the reason when the provider cannot be had', async (t) => {
  await withTempDir(async (dir) => {
    const cfg = { ...config(), stateDir: dir };
    const bin = await findTerraform();
    // Probe first: on a host that reaches the registry this test has nothing to prove.
    const probe = synthesizeLibvirtStack(planLibvirtStack({ config: cfg, accel: 'tcg', baseImage: { path: '/x', hash: 'cd'.repeat(32) }, seed, firmware }), join(dir, 'probe'));
    const reachable = await terraformInit(bin, probe.dir).then(() => true, () => false);
    if (reachable) {
      // Where the registry is reachable, init pins the provider per lab instead.
      t.true(existsSync(join(probe.dir, '.terraform.lock.hcl')));
      return;
    }
    const undo: string[] = [];
    const error = await t.throwsAsync(
      new LibvirtDriver().up(
        { config: cfg, accel: 'tcg', baseImage: '/x/disk.qcow2', imageHash: 'cd'.repeat(32), seedIso: '/x/seed.iso', seed },
        { signal: new AbortController().signal, progress: undefined as never, onUndo: (title) => undo.push(title) },
      ),
    );
    t.true(error instanceof LabError);
    t.regex(error!.message, /dmacvicar\/libvirt 0.9.7/);
    t.deepEqual(undo, [], 'nothing was created, so nothing is registered for cleanup');
    t.true(existsSync(join(dir, 'terraform', 'stacks', 'labsmith-lab', 'cdk.tf.json')), 'the synthesized stack stays for review');
  });
});
