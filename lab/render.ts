/**
 * lab:render: what a lab would receive, for review before booting. Secrets are generated
 * per lab at lab:up; here they are named placeholders, so the output is stable and diffable.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { renderSeedFiles, type SeedSecrets } from '../cloud-init/user-data.ts';
import { renderAddonManifests, type UpstreamTexts } from '../cloud-init/addons/bundle.ts';
import { apiServerSans } from '../cloud-init/addons/kubeconfig.ts';
import { renderKubeadmConfig } from '../cloud-init/addons/kubeadm-config.ts';
import type { LabConfig } from '../config/lab-config.ts';
import { synthesizeLibvirtStack } from './drivers/libvirt/cdktf.ts';
import { planLibvirtStack } from './drivers/libvirt/stack.ts';
import { OVMF_CODE, OVMF_VARS } from './drivers/qemu.ts';

export const PLACEHOLDER_SECRETS: SeedSecrets = {
  sshPublicKey: 'ssh-ed25519 <per-lab user key, generated at lab:up> labsmith',
  hostKey: { privateKey: '<per-lab SSH host key, generated at lab:up>', publicKey: 'ssh-ed25519 <per-lab host key> labsmith-host' },
  caCert: '<lab CA certificate, generated at lab:up>',
  tlsCert: '<placeholder ingress certificate, signed by the lab CA at lab:up>',
  tlsKey: '<placeholder ingress key, generated at lab:up>',
};

export interface RenderCluster {
  /** kubeadm's version from the lock, when it has one. */
  kubernetesVersion?: string;
  /** The upstream manifests available locally (verified against the lock). */
  upstream: Partial<UpstreamTexts>;
}

export async function renderLab(config: LabConfig, outDir: string, cluster?: RenderCluster): Promise<string[]> {
  const seed = renderSeedFiles(config, PLACEHOLDER_SECRETS);
  const written: string[] = [];
  if (cluster) {
    // The add-ons without secrets; the lab TLS manifest carries the CA key and exists only at lab:up.
    const dir = join(outDir, 'cluster');
    await mkdir(dir, { recursive: true });
    const files: Record<string, string> = {
      'kubeadm.yaml': renderKubeadmConfig(config, { kubernetesVersion: cluster.kubernetesVersion ?? `v${config.kubernetes.version}.0`, certSANs: apiServerSans(config.name, config.network.hostAddress) }),
      ...Object.fromEntries(renderAddonManifests(config, cluster.upstream).map((a) => [a.file, a.text])),
    };
    for (const [name, text] of Object.entries(files)) {
      await writeFile(join(dir, name), text);
      written.push(join(dir, name));
    }
  }
  await mkdir(join(outDir, 'seed'), { recursive: true });
  for (const [name, content] of Object.entries(seed)) {
    const path = join(outDir, 'seed', name);
    await writeFile(path, content);
    written.push(path);
  }
  // What --driver libvirt would apply (the base image path is known once the image is built).
  const stack = synthesizeLibvirtStack(
    planLibvirtStack({
      config,
      accel: config.vm.accel === 'tcg' ? 'tcg' : 'kvm',
      baseImage: { path: '<cached base image: see npm run image:build>', hash: 'render'.padEnd(64, '0') },
      seed,
      firmware: { code: OVMF_CODE, varsTemplate: OVMF_VARS },
    }),
    join(outDir, 'terraform'),
  );
  written.push(join(stack.dir, 'cdk.tf.json'));
  const configPath = join(outDir, 'lab.resolved.json');
  await writeFile(configPath, JSON.stringify(config, null, 2) + '\n');
  written.push(configPath);
  return written;
}
