/** kubeadm from the locked package, run on the host to list the images of the configured version. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../core/exec.ts';
import { parseKubeadmImageList } from '../../cloud-init/addons/images.ts';

/** `1.37.2-1.1` → `v1.37.2` */
export function kubernetesVersionOf(packageVersion: string): string {
  return `v${packageVersion.replace(/^\d+:/, '').split('-')[0]}`;
}

/** Unpacks kubeadm from its .deb into a temporary directory and asks it for its image list for this config. */
export async function kubeadmImages(kubeadmDeb: string, kubeadmConfig: string, signal?: AbortSignal): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'labsmith-kubeadm-'));
  try {
    await run('dpkg-deb', ['-x', kubeadmDeb, join(dir, 'root')], { signal });
    await writeFile(join(dir, 'kubeadm.yaml'), kubeadmConfig);
    const { stdout } = await run(join(dir, 'root', 'usr', 'bin', 'kubeadm'), ['config', 'images', 'list', '--config', join(dir, 'kubeadm.yaml')], { signal, timeoutMs: 60_000 });
    return parseKubeadmImageList(stdout);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `kubeadm config images list --kubernetes-version vX` of a kubeadm .deb (the target's images, before any config for it exists). */
export async function kubeadmImagesForVersion(kubeadmDeb: string, kubernetesVersion: string, signal?: AbortSignal): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'labsmith-kubeadm-'));
  try {
    await run('dpkg-deb', ['-x', kubeadmDeb, join(dir, 'root')], { signal });
    const { stdout } = await run(join(dir, 'root', 'usr', 'bin', 'kubeadm'), ['config', 'images', 'list', '--kubernetes-version', kubernetesVersion], { signal, timeoutMs: 60_000 });
    return parseKubeadmImageList(stdout);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
