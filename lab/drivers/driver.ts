/**
 * The driver interface: how a lab's VM is started, found and stopped. Small on purpose;
 * callers ask a driver's capabilities, never its name.
 */
import type { SeedFiles } from '../../cloud-init/user-data.ts';
import type { LabConfig } from '../../config/lab-config.ts';
import type { LabState } from '../state.ts';
import type { StepContext } from '../../core/steps.ts';

export interface DriverCapabilities {
  /** The driver forwards host ports itself (qemu hostfwd); otherwise labsmith installs host rules. */
  forwardsPortsItself: boolean;
  /** The driver can boot the image's kernel and initramfs directly (`vm.boot: direct`); otherwise it boots UEFI. */
  directKernelBoot: boolean;
  /** The driver grows the root partition to the lab's disk size before the first boot; otherwise cloud-init's growpart does, in the guest. */
  growsRootPartition: boolean;
}

export interface VmStartRequest {
  config: LabConfig;
  accel: 'kvm' | 'tcg';
  baseImage: string;
  /** The image's inputs hash (names shared volumes). */
  imageHash: string;
  seedIso: string;
  seed: SeedFiles;
  /** Set for `vm.boot: direct` on a driver that can: the disk's own kernel, initramfs and command line. */
  directBoot?: { kernel: string; cmdline: string };
  /** Where the driver may keep what it derives from the host once (the firmware's warmed variables); none: derive nothing. */
  cacheDir?: string;
}

export interface VmStatus {
  running: boolean;
  pid?: number;
  uptimeSeconds?: number;
}

export interface LabDriver {
  readonly name: string;
  readonly capabilities: DriverCapabilities;
  /**
   * Starts the VM; registers undo for everything it creates. Returns what lab:down needs:
   * every later call gets only the recorded state (and the directory it was read from).
   */
  up(request: VmStartRequest, step: StepContext): Promise<Partial<LabState>>;
  down(state: LabState, stateDir: string): Promise<void>;
  /**
   * Starts a stopped VM again from its existing disk (after a shutdown or a snapshot rollback),
   * from the recorded state alone. Returns what changed in the state (a new pid).
   */
  restart?(state: LabState, stateDir: string, signal?: AbortSignal): Promise<Partial<LabState>>;
  status(state: LabState, stateDir: string): Promise<VmStatus>;
  /** Where the lab's SSH forward is reachable from the host. */
  sshEndpoint(state: LabState): { host: string; port: number };
  /** The VM's own address as the host reaches it, when it has one (not behind qemu's user network). */
  address(state: LabState): string | undefined;
  consoleLog(stateDir: string, labName: string): string;
  /** The host-side interface of the VM's network, when labsmith forwards ports to it. */
  hostInterface?(state: LabState): string | undefined;
}
