/**
 * --driver libvirt: the lab declared with CDK for Terraform and applied with tofu or
 * terraform against libvirtd. Host ports are forwarded by labsmith's nftables table (the
 * driver declares it does not forward them itself).
 */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { LabError } from '../../../core/errors.ts';
import { run } from '../../../core/exec.ts';
import type { LabState } from '../../state.ts';
import type { LabDriver, VmStartRequest, VmStatus } from '../driver.ts';
import { OVMF_CODE, OVMF_VARS } from '../qemu.ts';
import { synthesizeLibvirtStack } from './cdktf.ts';
import { libvirtNames, planLibvirtStack } from './stack.ts';
import { findTerraform, terraformApply, terraformDestroy, terraformInit, terraformOutputs } from './terraform.ts';

export const TERRAFORM_DIR = 'terraform';
/** What state written before libvirtUri was recorded was created on. */
const DEFAULT_LIBVIRT_URI = 'qemu:///system';

export function stackDir(stateDir: string, labName: string): string {
  return join(stateDir, TERRAFORM_DIR, 'stacks', `labsmith-${labName}`);
}

export class LibvirtDriver implements LabDriver {
  readonly name = 'libvirt';
  readonly capabilities = { forwardsPortsItself: false, directKernelBoot: false, growsRootPartition: false };

  async up(request: VmStartRequest, step: Parameters<LabDriver['up']>[1]): Promise<Partial<LabState>> {
    const { config } = request;
    const bin = await findTerraform();
    const plan = planLibvirtStack({
      config,
      accel: request.accel,
      baseImage: { path: request.baseImage, hash: request.imageHash },
      seed: request.seed,
      firmware: { code: OVMF_CODE, varsTemplate: OVMF_VARS },
    });
    const stack = synthesizeLibvirtStack(plan, join(config.stateDir, TERRAFORM_DIR));
    // The provider first: without it nothing else matters, and it fails in well under a second.
    await terraformInit(bin, stack.dir, step.signal);
    await requireLibvirtd(config.libvirt.uri);
    step.onUndo('libvirt domain, volumes and network', () => terraformDestroy(bin, stack.dir));
    await terraformApply(bin, stack.dir, step.signal);
    const outputs = await terraformOutputs(bin, stack.dir);
    const vmAddress = typeof outputs.vm_address === 'string' ? outputs.vm_address : firstIpv4(outputs.vm_interfaces);
    if (!vmAddress) throw new LabError('libvirt reported no address for the VM yet', 'check the DHCP leases: virsh net-dhcp-leases labsmith-<name>');
    return { vmAddress, libvirtUri: config.libvirt.uri, networkMode: config.libvirt.networkMode };
  }

  /** From the recorded stack alone: the synthesized JSON and tfstate name everything the lab made. */
  async down(state: LabState, stateDir: string): Promise<void> {
    const dir = stackDir(stateDir, state.name);
    if (existsSync(join(dir, 'terraform.tfstate'))) await terraformDestroy(await findTerraform(), dir);
    await rm(join(stateDir, TERRAFORM_DIR), { recursive: true, force: true });
  }

  async status(state: LabState): Promise<VmStatus> {
    const r = await run('virsh', ['-c', state.libvirtUri ?? DEFAULT_LIBVIRT_URI, 'domstate', libvirtNames(state.name).domain], { allowFailure: true, timeoutMs: 15_000 });
    // "No such domain" is an answer; libvirtd not answering is not: a lab must never be judged gone on it.
    if (r.exitCode !== 0 && !/failed to get domain|domain not found|no domain with matching name/i.test(r.stderr)) {
      throw new LabError(`cannot ask libvirt at ${state.libvirtUri ?? DEFAULT_LIBVIRT_URI} about lab "${state.name}": ${(r.stderr || r.stdout).trim().split('\n').pop() ?? `virsh exit ${r.exitCode}`}`, 'start libvirtd (systemctl start libvirtd), then rerun');
    }
    const running = r.exitCode === 0 && r.stdout.trim() === 'running';
    return { running, uptimeSeconds: running ? Math.round((Date.now() - Date.parse(state.startedAt)) / 1000) : undefined };
  }

  sshEndpoint(state: LabState): { host: string; port: number } {
    const ssh = state.forwards.find((f) => f.name === 'ssh');
    if (state.forwarding && ssh) return { host: state.hostAddress === '0.0.0.0' ? '127.0.0.1' : state.hostAddress, port: ssh.host };
    if (!state.vmAddress) throw new LabError('the lab has no known VM address', 'is it running? npm run lab:status');
    return { host: state.vmAddress, port: 22 };
  }

  address(state: LabState): string | undefined {
    return state.vmAddress;
  }

  /** libvirt's qemu runs as its own user, so the console goes to libvirt's log directory. */
  consoleLog(_stateDir: string, labName: string): string {
    return libvirtNames(labName).serialLog;
  }

  hostInterface(state: LabState): string | undefined {
    return libvirtNames(state.name).bridge;
  }
}

async function requireLibvirtd(uri: string): Promise<void> {
  const r = await run('virsh', ['-c', uri, 'version'], { allowFailure: true, timeoutMs: 15_000 });
  if (r.exitCode !== 0) {
    throw new LabError(`libvirtd is not reachable at ${uri}: ${(r.stderr || r.stdout).trim().split('\n').pop()}`, 'start it (libvirtd -d, or systemctl start libvirtd) or use the default qemu driver');
  }
}

function firstIpv4(interfaces: unknown): string | undefined {
  if (!Array.isArray(interfaces)) return undefined;
  for (const i of interfaces as { addrs?: { addr: string; type: string }[] }[]) {
    const a = i.addrs?.find((x) => x.type === 'ipv4');
    if (a) return a.addr;
  }
  return undefined;
}
