/** Where an image build takes its versions from: the lock file, the profile, and an optional offline directory. */
import { resolve } from 'node:path';
import type { ContainerdMajor, LabConfig } from '../config/lab-config.ts';
import { workloadImagesMissingFromLock } from '../cloud-init/addons/bundle.ts';
import { LabError } from '../core/errors.ts';
import { DEFAULT_LOCK_FILE, readImageLock, type ImageLock } from './lock/lock.ts';

export interface ImageSource {
  lock: ImageLock;
  /** false: an OS-only image (no Kubernetes layer). */
  kubernetes: boolean;
  /** The minor lab.yaml asks for; the lock must be for the same. */
  kubernetesMinor: string;
  /** Locked files and image archives from here instead of the network. */
  artifactsDir?: string;
  /** kubernetes.containerd: "2" takes the lock's pinned containerd 2 instead of the suite's 1.7. */
  containerd?: ContainerdMajor;
  /** `--stage-upgrade MINOR`: the lock's target section, staged in the image, not installed. */
  stageUpgrade?: string;
}

export interface ImageSourceFlags {
  lock?: string;
  artifacts?: string;
  'os-only'?: boolean;
  'stage-upgrade'?: string;
}

export async function loadImageSource(config: LabConfig, flags: ImageSourceFlags): Promise<ImageSource> {
  const lockFile = resolve(flags.lock ?? DEFAULT_LOCK_FILE);
  const lock = await readImageLock(lockFile);
  const kubernetes = config.kubernetes.enabled && !flags['os-only'];
  // The workload images are baked like the cluster's: one the lock lacks would be missing offline.
  const missing = kubernetes ? workloadImagesMissingFromLock(config, Object.keys(lock.images)) : [];
  if (missing.length) {
    throw new LabError(`${lockFile} does not pin every workload image:\n${missing.map((m) => `  - ${m}`).join('\n')}`, 'run `npm run image:lock -- --only images` where the registry is reachable (it keeps the other entries and names what it could not reach)', 2);
  }
  return {
    lock,
    kubernetes,
    kubernetesMinor: config.kubernetes.version,
    artifactsDir: flags.artifacts ? resolve(flags.artifacts) : undefined,
    containerd: config.kubernetes.containerd,
    ...(flags['stage-upgrade'] ? { stageUpgrade: String(flags['stage-upgrade']) } : {}),
  };
}

export const IMAGE_SOURCE_USAGE = `  --lock FILE              the lock file (default: ${DEFAULT_LOCK_FILE})
  --artifacts DIR          take locked files and image archives from DIR (filled by image:fetch-artifacts), offline
  --os-only                no Kubernetes layer: the OS image only (what boots where pkgs.k8s.io is unreachable)
  --stage-upgrade MINOR    also carry the lock's target section (image:lock --kubernetes MINOR) staged, not installed, for lab:upgrade offline`;

/**
 * An OS-only source locked to the mirror as it is now, for benchmarks and tests that must build
 * whatever today's archive holds. The repository's lock file is not touched.
 */
export async function osOnlySourceAtMirrorHead(config: LabConfig, signal?: AbortSignal): Promise<ImageSource> {
  const { refreshLock } = await import('./lock/refresh.ts');
  const { lock } = await refreshLock({ config, parts: ['debian'], signal });
  return { lock, kubernetes: false, kubernetesMinor: config.kubernetes.version };
}
