// npm run server:seed -- --out DIR [--config lab.yaml] [--os-only] [--lock FILE] [--artifacts DIR]
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { LabError } from '../core/errors.ts';
import { runMain } from '../core/main.ts';
import { loadLabConfig, DEFAULT_CONFIG_FILE } from '../config/load.ts';
import { UPSTREAM_MANIFEST_NAMES, type UpstreamTexts } from '../cloud-init/addons/bundle.ts';
import { resolveLockedInputs } from '../images/artifacts/store.ts';
import { kubernetesVersionOf } from '../images/kubernetes/kubeadm.ts';
import { IMAGE_SOURCE_USAGE, loadImageSource, type ImageSourceFlags } from '../images/source.ts';
import { cacheRoot } from '../core/paths.ts';
import { writeServerSeed } from '../lab/server/write-seed.ts';

runMain(
  {
    string: ['config', 'out', 'lock', 'artifacts'],
    boolean: ['os-only'],
    usage: `
npm run server:seed -- --out DIR [options]
  --out DIR       where the seed goes: DIR/nocloud/{user-data,meta-data,network-config}, DIR/seed.iso (label cidata), DIR/known_hosts
  --config FILE   lab config with a server: section (default: lab.yaml)
${IMAGE_SOURCE_USAGE}`,
  },
  async ({ args, signal }) => {
    if (!args.out) throw new LabError('--out DIR is required', 'npm run server:seed -- --out ./server-seed', 2);
    const configFile = args.config ?? DEFAULT_CONFIG_FILE;
    const config = await loadLabConfig(configFile);
    const source = await loadImageSource(config, args as ImageSourceFlags);
    let cluster;
    if (source.kubernetes) {
      const resolved = await resolveLockedInputs(source.lock, { packages: [], manifests: UPSTREAM_MANIFEST_NAMES, images: false }, { artifactsDir: source.artifactsDir, storeDir: join(cacheRoot(), 'artifacts'), signal });
      const upstream = Object.fromEntries(await Promise.all(UPSTREAM_MANIFEST_NAMES.map(async (n) => [n, await readFile(resolved.manifests[n]!, 'utf8')] as const))) as UpstreamTexts;
      const kubeadm = source.lock.kubernetes.packages.kubeadm;
      if (!kubeadm) throw new LabError('the lock file has no kubeadm package', 'run `npm run image:lock` where pkgs.k8s.io is reachable, or render an OS-only seed with --os-only');
      cluster = { kubernetesVersion: kubernetesVersionOf(kubeadm.version), lockedImages: Object.keys(source.lock.images), upstream };
    }
    const seed = await writeServerSeed(config, resolve(args.out), { configFile, cluster, signal });
    process.stdout.write([
      `server seed for ${config.server!.hostname}.${config.server!.domain}${cluster ? '' : ' (OS-only)'}:`,
      `  files:       ${seed.dir}  (copy to a FAT/ext4 partition labelled CIDATA, or a USB stick)`,
      `  ISO:         ${seed.iso}  (label cidata: attach as a CD-ROM)`,
      `  known_hosts: ${seed.knownHosts}  (ssh -o UserKnownHostsFile=${seed.knownHosts} ${config.ssh.user}@…)`,
      `  kept here:   the server's SSH host key; keep ${dirname(seed.iso)} private`,
      '',
    ].join('\n'));
  },
);
