/**
 * lab:render: what a lab would receive, for review before booting: the same seed lab:up writes
 * (the Kubernetes seed with the bootstrap and its add-ons for a Kubernetes lab, the placeholder
 * ingress for an OS-only one). Secrets are generated per lab at lab:up; here they are named
 * placeholders, so the output is stable and diffable. Nothing here needs the network (a
 * kustomization in workloads: fetches Debian's kustomize once, from the Debian mirror).
 * workloads/ holds the user's workloads as they would be applied, and the apply plan.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { readUserDataParts, renderSeedFiles, type ClusterSeed, type SeedFiles, type SeedOptions, type SeedSecrets } from '../cloud-init/user-data.ts';
import { renderAddonManifests, renderLabTlsManifest, UPSTREAM_MANIFEST_NAMES, type UpstreamTexts } from '../cloud-init/addons/bundle.ts';
import { pauseImageOf } from '../cloud-init/cluster-seed.ts';
import { apiServerSans } from '../cloud-init/addons/kubeconfig.ts';
import { renderKubeadmConfig } from '../cloud-init/addons/kubeadm-config.ts';
import type { LabConfig, SecretSource } from '../config/lab-config.ts';
import type { RegistryMaterial } from '../cloud-init/registries.ts';
import { synthesizeLibvirtStack } from './drivers/libvirt/cdktf.ts';
import { planLibvirtStack } from './drivers/libvirt/stack.ts';
import { OVMF_CODE, OVMF_VARS, QemuDriver } from './drivers/qemu.ts';
import { renderYamlDocuments } from './workloads/payload.ts';
import { renderApplyPlanText } from './workloads/plan.ts';
import { prepareWorkloads } from './workloads/prepare.ts';

export const PLACEHOLDER_SECRETS: SeedSecrets = {
  sshPublicKey: 'ssh-ed25519 <per-lab user key, generated at lab:up> labsmith',
  hostKey: { privateKey: '<per-lab SSH host key, generated at lab:up>', publicKey: 'ssh-ed25519 <per-lab host key> labsmith-host' },
  caCert: '<lab CA certificate, generated at lab:up>',
  tlsCert: '<placeholder ingress certificate, signed by the lab CA at lab:up>',
  tlsKey: '<placeholder ingress key, generated at lab:up>',
};

/** The registries as lab:render shows them: hosts.toml as written, the CA and credentials by where lab:up reads them. */
export function placeholderRegistries(config: LabConfig): RegistryMaterial[] {
  const from = (s: SecretSource | string) => (typeof s === 'string' ? JSON.stringify(s) : s.env !== undefined ? `$${s.env}` : s.file);
  return config.registries.map((r) => ({
    host: r.host,
    ...(r.mirrorOf ? { mirrorOf: r.mirrorOf } : {}),
    ...(r.ca ? { caPem: `<CA certificate of ${r.host}, read from ${r.ca} at lab:up>\n` } : {}),
    ...(r.credentials ? { credentials: { placeholder: `<base64 user:password for ${r.host} (user ${from(r.credentials.username)}, password from ${from(r.credentials.password)}), read at lab:up>` } } : {}),
  }));
}

export const PLACEHOLDER_CA = { certPem: PLACEHOLDER_SECRETS.caCert, keyPem: '<lab CA key, generated at lab:up>' };
const PLACEHOLDER_PAUSE_IMAGE = '<pause image: the lock file lists none, run npm run image:lock>';

export interface RenderCluster {
  /** kubeadm's version from the lock, when it has one. */
  kubernetesVersion?: string;
  /** The upstream manifests available locally (verified against the lock). */
  upstream: Partial<UpstreamTexts>;
  /** The lock's image references (kubeadm's pause image among them), when it has them. */
  lockedImages?: string[];
}

export interface RenderedLab {
  seed: SeedFiles;
  /** The Kubernetes part of the seed; undefined for an OS-only lab. */
  cluster?: ClusterSeed;
  /** Inputs the render went without, each naming what lab:up would stop at. */
  missing: string[];
}

/** As the default driver (qemu) boots it: the partition grown on the host. */
const RENDERED_SEED_OPTIONS: SeedOptions = { rootPartitionGrown: new QemuDriver().capabilities.growsRootPartition };

/**
 * The seed lab:up would write (pure). A Kubernetes lab (kubernetes.enabled) gets the cluster seed
 * from whatever inputs are at hand; what is not (an upstream manifest, the pause image) is named.
 */
export function planRenderedLab(config: LabConfig, cluster: RenderCluster = { upstream: {} }): RenderedLab {
  const secrets: SeedSecrets = { ...PLACEHOLDER_SECRETS, registries: placeholderRegistries(config) };
  if (!config.kubernetes.enabled) return { seed: renderSeedFiles(config, secrets, undefined, RENDERED_SEED_OPTIONS), missing: [] };
  const missing = UPSTREAM_MANIFEST_NAMES.filter((n) => cluster.upstream[n] === undefined).map(
    (n) => `${n}: not rendered, its locked manifest is not in the cache yet (image:build or image:fetch-artifacts fetches it)`,
  );
  const pauseImage = pauseImageOf(cluster.lockedImages ?? []);
  if (!pauseImage) missing.push("containerd's sandbox image: the lock lists no pause image (npm run image:lock where the registries are reachable)");
  const clusterSeed: ClusterSeed = {
    kubeadmConfig: renderKubeadmConfig(config, { kubernetesVersion: cluster.kubernetesVersion ?? `v${config.kubernetes.version}.0`, certSANs: apiServerSans(config.name, config.network.hostAddress) }),
    // The lab TLS manifest carries the CA key at lab:up; here its placeholder.
    addons: [...renderAddonManifests(config, cluster.upstream), renderLabTlsManifest(config, PLACEHOLDER_CA)],
    pauseImage: pauseImage ?? PLACEHOLDER_PAUSE_IMAGE,
  };
  return { seed: renderSeedFiles(config, secrets, clusterSeed, RENDERED_SEED_OPTIONS), cluster: clusterSeed, missing };
}

/**
 * workloads/: per source the objects as they would be applied (Namespaces and CRDs first, the
 * Secrets labsmith makes as named placeholders, a kustomization as the host rendered it), and
 * plan.txt, the order and waits. Validation problems stop the render, as they would stop lab:up.
 */
async function renderWorkloads(config: LabConfig, dir: string, upstream: RenderCluster['upstream'], warn: (message: string) => void): Promise<string[]> {
  const prepared = await prepareWorkloads(config, { upstream, placeholders: true, deferUnavailable: true });
  for (const note of prepared.notes) warn(note);
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const [i, s] of prepared.plan.sources.entries()) {
    const loaded = prepared.loaded[i]!;
    const rest = s.format === 'plain' ? s.objects : loaded.objects.map((o) => o.object).filter((o) => !s.first.includes(o));
    const header = s.format === 'kustomization' ? `# ${s.kustomizationDir}: rendered on this host for review; the guest renders it again with kubectl kustomize
` : '';
    const path = join(dir, `${s.dirName}.yaml`);
    await writeFile(path, header + renderYamlDocuments([...s.first, ...s.secrets, ...rest]));
    written.push(path);
  }
  const planPath = join(dir, 'plan.txt');
  await writeFile(planPath, renderApplyPlanText(prepared.plan));
  written.push(planPath);
  return written;
}

/**
 * Writes seed/ (the three NoCloud files), seed-parts/ (user-data's cloud-config, and under files/
 * what its archive part writes in the guest, at the guest's paths), the resolved config, the
 * libvirt driver's Terraform JSON, and for a Kubernetes lab given its inputs, cluster/: the kubeadm
 * config and add-ons the seed carries compressed, as plain files to read.
 */
export async function renderLab(config: LabConfig, outDir: string, cluster?: RenderCluster, warn: (message: string) => void = () => undefined): Promise<string[]> {
  const rendered = planRenderedLab(config, cluster);
  for (const m of rendered.missing) warn(m);
  const written: string[] = [];
  if (config.workloads.length && config.kubernetes.enabled) written.push(...(await renderWorkloads(config, join(outDir, 'workloads'), cluster?.upstream ?? {}, warn)));
  if (cluster && rendered.cluster) {
    const dir = join(outDir, 'cluster');
    await mkdir(dir, { recursive: true });
    const addons = [...rendered.cluster.addons].sort((a, b) => (a.file < b.file ? -1 : 1));
    const files: Record<string, string> = { 'kubeadm.yaml': rendered.cluster.kubeadmConfig, ...Object.fromEntries(addons.map((a) => [a.file, a.text])) };
    for (const [name, text] of Object.entries(files)) {
      await writeFile(join(dir, name), text);
      written.push(join(dir, name));
    }
  }
  await mkdir(join(outDir, 'seed'), { recursive: true });
  for (const [name, content] of Object.entries(rendered.seed)) {
    const path = join(outDir, 'seed', name);
    await writeFile(path, content);
    written.push(path);
  }
  // user-data's halves as plain files to read and diff: its cloud-config, and the files its archive part writes.
  const parts = readUserDataParts(rendered.seed['user-data']);
  const partsDir = join(outDir, 'seed-parts');
  await mkdir(partsDir, { recursive: true });
  await writeFile(join(partsDir, 'cloud-config.yaml'), parts.cloudConfigText);
  written.push(join(partsDir, 'cloud-config.yaml'));
  for (const file of parts.files) {
    const path = join(partsDir, 'files', file.path);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, file.content, { mode: parseInt(file.permissions, 8) });
    written.push(path);
  }
  // What --driver libvirt would apply (the base image path is known once the image is built).
  const stack = synthesizeLibvirtStack(
    planLibvirtStack({
      config,
      accel: config.vm.accel === 'tcg' ? 'tcg' : 'kvm',
      baseImage: { path: '<cached base image: see npm run image:build>', hash: 'render'.padEnd(64, '0') },
      seed: rendered.seed,
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
