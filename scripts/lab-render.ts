// npm run lab:render -- --out DIR [--config lab.yaml] [--lock FILE] [--os-only]
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { LabError } from '../core/errors.ts';
import { runMain } from '../core/main.ts';
import { kubernetesVersionOf } from '../images/kubernetes/kubeadm.ts';
import { DEFAULT_LOCK_FILE, readImageLock } from '../images/lock/lock.ts';
import { loadLabConfig } from '../config/load.ts';
import { renderLab, type RenderCluster } from '../lab/render.ts';
import { readCachedAddonManifests } from '../lab/workloads/upstream.ts';

runMain(
  {
    string: ['config', 'out', 'lock'],
    boolean: ['os-only'],
    usage: `
npm run lab:render -- --out DIR [--config FILE] [--lock FILE] [--os-only]
  Writes the cloud-init seed a lab would get (for a Kubernetes lab the cluster seed: bootstrap,
  kubeadm config and add-ons, also under cluster/ as plain files; --os-only or
  kubernetes.enabled: false: the OS-only seed with the placeholder ingress), the resolved config
  and the libvirt Terraform JSON; workloads/ (your manifests as they would be applied, plan.txt).
  Secrets are placeholders. Needs no network: add-ons whose
  upstream manifest is not in the cache yet are left out and named.`,
  },
  async ({ args, progress }) => {
    if (!args.out) throw new LabError('--out DIR is required', 'for example: npm run lab:render -- --out out/render', 2);
    const loaded = await loadLabConfig(args.config);
    const config = args['os-only'] ? { ...loaded, kubernetes: { ...loaded.kubernetes, enabled: false } } : loaded;
    let cluster: RenderCluster | undefined;
    if (config.kubernetes.enabled) {
      cluster = { upstream: {} };
      const lockPath = resolve(args.lock ?? DEFAULT_LOCK_FILE);
      if (existsSync(lockPath)) {
        const lock = await readImageLock(lockPath);
        const upstream = await readCachedAddonManifests(lockPath);
        const kubeadm = lock.kubernetes.packages.kubeadm;
        cluster = { kubernetesVersion: kubeadm && kubernetesVersionOf(kubeadm.version), upstream, lockedImages: Object.keys(lock.images) };
      } else progress.warn(`${lockPath} does not exist: rendering with kubernetes.version's .0 release and no locked inputs`);
    }
    for (const path of await renderLab(config, args.out, cluster, (m) => progress.warn(m))) process.stdout.write(`${path}\n`);
  },
);
