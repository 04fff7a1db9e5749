/** The cluster part of a Kubernetes lab's seed, from lab.yaml, the lock and the lab's CA (pure). */
import { LabError } from '../core/errors.ts';
import type { LabConfig } from '../config/lab-config.ts';
import { renderAddonManifests, renderLabTlsManifest, type UpstreamTexts } from './addons/bundle.ts';
import { apiServerSans } from './addons/kubeconfig.ts';
import { renderKubeadmConfig } from './addons/kubeadm-config.ts';
import type { ClusterSeed } from './user-data.ts';

/** The pause image in kubeadm's list: containerd's sandbox image must be this one. */
export function pauseImageOf(images: string[]): string | undefined {
  return images.find((i) => /\/pause:[\w.-]+$/.test(i));
}

export function renderClusterSeed(
  config: LabConfig,
  opts: { kubernetesVersion: string; lockedImages: string[]; upstream: UpstreamTexts; ca: { certPem: string; keyPem: string } },
): ClusterSeed {
  const pauseImage = pauseImageOf(opts.lockedImages);
  if (!pauseImage) throw new LabError('the lock file lists no pause image', 'run `npm run image:lock` where the registries are reachable: kubeadm names its pause image');
  return {
    kubeadmConfig: renderKubeadmConfig(config, { kubernetesVersion: opts.kubernetesVersion, certSANs: apiServerSans(config.name, config.network.hostAddress) }),
    addons: [...renderAddonManifests(config, opts.upstream), renderLabTlsManifest(config, opts.ca)],
    pauseImage,
  };
}
