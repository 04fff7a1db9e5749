// npm run lab:render -- --out DIR [--config lab.yaml] [--lock FILE]
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { LabError } from '../core/errors.ts';
import { runMain } from '../core/main.ts';
import { cacheRoot } from '../core/paths.ts';
import { UPSTREAM_MANIFEST_NAMES, type UpstreamTexts } from '../cloud-init/addons/bundle.ts';
import { cachedLockedFile } from '../images/artifacts/store.ts';
import { kubernetesVersionOf } from '../images/kubernetes/kubeadm.ts';
import { DEFAULT_LOCK_FILE, readImageLock } from '../images/lock/lock.ts';
import { loadLabConfig } from '../config/load.ts';
import { renderLab, type RenderCluster } from '../lab/render.ts';

runMain(
  {
    string: ['config', 'out', 'lock'],
    usage: `
npm run lab:render -- --out DIR [--config FILE] [--lock FILE]
  Writes the cloud-init seed, the resolved config, the libvirt Terraform JSON and the cluster's
  kubeadm config and add-ons a lab would get (secrets as placeholders; add-ons whose upstream
  manifest is not in the cache yet are left out and named).`,
  },
  async ({ args, progress }) => {
    if (!args.out) throw new LabError('--out DIR is required', 'for example: npm run lab:render -- --out out/render', 2);
    const config = await loadLabConfig(args.config);
    let cluster: RenderCluster | undefined;
    const lockPath = resolve(args.lock ?? DEFAULT_LOCK_FILE);
    if (config.kubernetes.enabled && existsSync(lockPath)) {
      const lock = await readImageLock(lockPath);
      const upstream: Partial<UpstreamTexts> = {};
      for (const name of UPSTREAM_MANIFEST_NAMES) {
        const entry = lock.manifests[name];
        const path = entry && (await cachedLockedFile(entry.url, entry.sha256, join(cacheRoot(), 'artifacts')));
        if (path) upstream[name] = await readFile(path, 'utf8');
        else progress.warn(`${name}: not rendered, its locked manifest is not in the cache yet (image:build or image:fetch-artifacts fetches it)`);
      }
      const kubeadm = lock.kubernetes.packages.kubeadm;
      cluster = { kubernetesVersion: kubeadm && kubernetesVersionOf(kubeadm.version), upstream };
    }
    for (const path of await renderLab(config, args.out, cluster)) process.stdout.write(`${path}\n`);
  },
);
