/**
 * The only module that imports cdktf. It turns a LibvirtStackPlan into Terraform JSON with
 * hand-written bindings (no prebuilt libvirt bindings exist on npm). cdktf 0.21 is the final
 * HashiCorp release; moving to its fork (cdktn) or to plain HCL touches this file only.
 */
import { App, LocalBackend, TerraformDataSource, TerraformOutput, TerraformProvider, TerraformResource, TerraformStack } from 'cdktf';
import type { Construct } from 'constructs';
import { chmodSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { LibvirtStackPlan } from './schema.ts';

export const LIBVIRT_PROVIDER = { source: 'dmacvicar/libvirt', version: '0.9.7' } as const;

const metadata = { providerName: 'libvirt', providerVersion: LIBVIRT_PROVIDER.version, providerVersionConstraint: LIBVIRT_PROVIDER.version };

class LibvirtProvider extends TerraformProvider {
  constructor(scope: Construct, id: string, private readonly config: LibvirtStackPlan['provider']) {
    super(scope, id, { terraformResourceType: 'libvirt', terraformGeneratorMetadata: metadata, terraformProviderSource: LIBVIRT_PROVIDER.source });
  }
  protected override synthesizeAttributes(): Record<string, unknown> {
    return { ...this.config };
  }
}

/** A resource whose attributes are already in the provider's snake_case terms. */
class LibvirtResource extends TerraformResource {
  constructor(scope: Construct, id: string, type: string, private readonly attributes: object) {
    super(scope, id, { terraformResourceType: type, terraformGeneratorMetadata: metadata });
  }
  protected override synthesizeAttributes(): Record<string, unknown> {
    return { ...this.attributes };
  }
}

class LibvirtDataSource extends TerraformDataSource {
  constructor(scope: Construct, id: string, type: string, private readonly attributes: object) {
    super(scope, id, { terraformResourceType: type, terraformGeneratorMetadata: metadata });
  }
  protected override synthesizeAttributes(): Record<string, unknown> {
    return { ...this.attributes };
  }
}

class LabStack extends TerraformStack {
  constructor(scope: Construct, plan: LibvirtStackPlan) {
    super(scope, plan.stackName);
    // State lives beside the synthesized JSON, in the lab's own directory.
    new LocalBackend(this, { path: 'terraform.tfstate' });
    new LibvirtProvider(this, 'libvirt', plan.provider);
    // Construct ids must be unique per stack; Terraform names only per type, and the plan's
    // references ("${libvirt_volume.seed.path}") use the plain names.
    const add = (type: string, entries: Record<string, object>) => {
      for (const [id, attrs] of Object.entries(entries)) new LibvirtResource(this, `${type}.${id}`, type, attrs).overrideLogicalId(id);
    };
    add('libvirt_volume', plan.volumes);
    add('libvirt_cloudinit_disk', plan.cloudinitDisks);
    add('libvirt_network', plan.networks);
    add('libvirt_domain', plan.domains);
    for (const [id, attrs] of Object.entries(plan.interfaceAddresses)) {
      new LibvirtDataSource(this, `data.libvirt_domain_interface_addresses.${id}`, 'libvirt_domain_interface_addresses', attrs).overrideLogicalId(id);
    }
    for (const [id, value] of Object.entries(plan.outputs)) new TerraformOutput(this, `output.${id}`, { value }).overrideLogicalId(id);
  }
}

export interface SynthesizedStack {
  /** Directory holding cdk.tf.json: terraform runs here. */
  dir: string;
  json: Record<string, unknown>;
}

/** Terraform JSON for the plan, written under `outdir`, without a terraform binary or network. */
export function synthesizeLibvirtStack(plan: LibvirtStackPlan, outdir: string): SynthesizedStack {
  const app = new App({ outdir });
  new LabStack(app, plan);
  app.synth();
  // cdk.tf.json carries the whole user-data (the SSH host private key, the lab CA key): owner-only, like every file of the lab.
  restrictToOwner(outdir);
  const dir = `${outdir}/stacks/${plan.stackName}`;
  return { dir, json: JSON.parse(readFileSync(`${dir}/cdk.tf.json`, 'utf8')) as Record<string, unknown> };
}

/** chmod go-rwx on a tree cdktf wrote with the default umask (sync, like cdktf's own synth). */
function restrictToOwner(path: string): void {
  const stat = statSync(path);
  chmodSync(path, stat.mode & 0o700);
  if (stat.isDirectory()) for (const name of readdirSync(path)) restrictToOwner(join(path, name));
}
