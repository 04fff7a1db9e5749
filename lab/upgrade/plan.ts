/**
 * The upgrade rehearsal, planned once (pure): every pre-check over the gathered facts, the lock's
 * target section and the user's manifests, all reported at once; then the ordered steps with
 * the exact commands each runs in the guest. The executor (run.ts) runs these steps as they are,
 * `--dry-run` prints them, and the production runbook (runbook.ts) is rendered from them.
 */
import { shellQuote } from '../../core/exec.ts';
import { BOOTSTRAP_PATHS, KUBERNETES_GUEST_PATHS, STAGED_UPGRADE_PATHS, UPGRADE_GUEST_PATHS } from '../../core/paths.ts';
import { imageRepository } from '../../images/artifacts/store.ts';
import { GUEST_KUBERNETES_APT_KEYRING, GUEST_KUBERNETES_APT_SOURCE } from './kubeadm-upgrade.ts';
import type { TargetSection } from '../../images/lock/lock.ts';
import { renderContainerdPreference } from '../../images/kubernetes/containerd2.ts';
import { addonReleasesFor, type AddonRelease } from '../../images/kubernetes/addon-support.ts';
import { kubernetesVersionOf } from '../../images/kubernetes/kubeadm.ts';
import { imageArchiveName } from '../../images/artifacts/names.ts';
import { KUBEADM_ETCD, renderSnapshotSaveArgs } from '../backup/etcd.ts';
import type { NodeFacts } from './facts.ts';
import { checkKubeadmConfig, checkKubeletFlags } from './kubeadm-removals.ts';
import { checkContainerd, checkDiskSpace, checkRemovedApis, checkVersionSkew, minimumContainerdFor, type ManifestFile, type PrecheckProblem } from './prechecks.ts';

/** Where the rehearsal takes the target's .debs and image archives from. */
export type UpgradePayload =
  | { kind: 'staged'; dir: string; files: Record<string, number> }
  | { kind: 'artifacts'; dir: string; files: Record<string, number> };

export interface UpgradeInputs {
  targetMinor: string;
  /** The lock's target section (absent: not locked). */
  target?: TargetSection;
  /** The add-on versions the cluster runs now (the lock's manifests), by add-on name. */
  currentAddons: Partial<Record<string, string>>;
  facts: NodeFacts;
  payload?: UpgradePayload;
  /** The user's manifests (lab.yaml workloads:), read from their directories. */
  workloadManifests: ManifestFile[];
  storageDir: string;
  labName: string;
  snapshotTag: string;
}

export interface PlannedStep {
  id: 'baseline' | 'rollback-point' | 'import-images' | 'containerd' | 'kubeadm' | `addon-${string}` | 'after';
  title: string;
  /** Workloads restart or the API server is away while it runs: counted in the downtime. */
  disruptive: boolean;
  /** What runs in the guest, in order, as a shell would read it (the runbook prints these). */
  commands: string[];
  /** What production runs instead, where it differs (signed network sources instead of the staged payload). */
  production?: string[];
  /** Why the step does nothing (an add-on already at the target's version). */
  noop?: string;
}

export interface UpgradePlan {
  from: string;
  to: string;
  /** e.g. 1.38.1-1.1 */
  packageVersion: string;
  /** e.g. v1.38.1 */
  kubernetesVersion: string;
  nodeName: string;
  containerd: { installed: string; required: string; target?: { version: string; sha256: string; suite: string } };
  packages: { name: string; version: string; sha256: string }[];
  images: { ref: string; digest: string }[];
  payloadDir: string;
  volumeDirs: string[];
  snapshotTag: string;
  steps: PlannedStep[];
}

const KUBECTL = `kubectl --kubeconfig ${BOOTSTRAP_PATHS.adminKubeconfig}`;
const q = (s: string) => shellQuote(s);
const minorOf = (v: string) => /^v?(\d+\.\d+)/.exec(v)?.[1] ?? v;

/** Every pre-check at once; an empty list means the plan may run. */
export function runUpgradePrechecks(inputs: UpgradeInputs): PrecheckProblem[] {
  const { facts, target, targetMinor } = inputs;
  const problems: PrecheckProblem[] = [];
  if ('missing' in facts.cluster) {
    problems.push({ check: 'cluster', message: `lab ${inputs.labName} has no cluster to upgrade: ${facts.cluster.missing}`, hint: 'lab:upgrade rehearses a Kubernetes lab: npm run lab:up (without --os-only) with kubernetes.enabled: true' });
  } else {
    const c = facts.cluster;
    problems.push(...checkVersionSkew(c.serverVersion, targetMinor));
    problems.push(...checkRemovedApis([...inputs.workloadManifests, { path: 'cluster objects (kubectl get -A -o yaml)', text: c.objects }], targetMinor));
    for (const r of c.deprecatedApiRequests.filter((x) => minorOf(x.removedRelease) === targetMinor)) {
      problems.push({ check: 'removed-api', message: `a client of the cluster still requests ${r.group || 'core'}/${r.version} ${r.resource}, which Kubernetes ${r.removedRelease} removes (apiserver_requested_deprecated_apis)`, hint: 'find the client (audit log, or the user agent in the API server log) and move it to the served version' });
    }
    problems.push(...checkKubeadmConfig(c.clusterConfiguration, targetMinor));
    problems.push(...checkKubeletFlags(c.kubeletFlags, targetMinor));
  }
  const lockHint = `run \`npm run image:lock -- --kubernetes ${targetMinor}\` where pkgs.k8s.io and the registries are reachable`;
  if (!target) problems.push({ check: 'inputs', message: `the lock file has no target section for Kubernetes ${targetMinor}`, hint: lockHint });
  else if (target.kubernetes.minor !== targetMinor) problems.push({ check: 'inputs', message: `the lock's target section is for Kubernetes ${target.kubernetes.minor}, not ${targetMinor}`, hint: lockHint });
  else {
    for (const p of ['kubeadm', 'kubelet', 'kubectl']) if (!target.kubernetes.packages[p]) problems.push({ check: 'inputs', message: `the lock's target section has no ${p} package (target.kubernetes.packages.${p}, from ${target.kubernetes.repository})`, hint: lockHint });
    if (Object.keys(target.images).length === 0) problems.push({ check: 'inputs', message: `the lock's target section has no images (kubeadm config images list --kubernetes-version for ${targetMinor}, and the add-ons')`, hint: lockHint });
    // containerd: below the target's floor is fine when the lock carries the containerd to move to.
    const low = checkContainerd(facts.containerdVersion, targetMinor);
    if (low.length && !target.containerd) problems.push(...low.map((p) => ({ ...p, hint: `${p.hint}; the lock's target section has no containerd: ${lockHint}` })));
    if (!inputs.payload) {
      problems.push({ check: 'inputs', message: `no upgrade payload for ${targetMinor}: the image has none staged (/${STAGED_UPGRADE_PATHS.dir}/${targetMinor}) and no --artifacts DIR was given`, hint: `build the image with \`npm run image:build -- --stage-upgrade ${targetMinor}\`, or pass --artifacts DIR filled by image:fetch-artifacts` });
    } else {
      for (const f of payloadFiles(target)) {
        if (inputs.payload.files[f] === undefined) problems.push({ check: 'inputs', message: `${inputs.payload.kind === 'staged' ? 'the staged payload' : `--artifacts ${inputs.payload.dir}`} has no ${f}`, hint: inputs.payload.kind === 'staged' ? `rebuild the image with --stage-upgrade ${targetMinor} from this lock` : 'refill it with image:fetch-artifacts from this lock' });
      }
      const payloadBytes = Object.values(inputs.payload.files).reduce((a, b) => a + b, 0);
      // Imported images take about their archive size again in containerd's content store and snapshots; the etcd snapshot and /etc/kubernetes tarball need room too.
      problems.push(...checkDiskSpace(facts.freeBytes, { '/': 2 * payloadBytes + 512 * 2 ** 20 }));
    }
  }
  return problems;
}

/**
 * --artifacts DIR's payload: the lock's target inputs as resolved (and verified) host files, by
 * the names the guest payload directory uses (pure over the resolver's result).
 */
export function artifactsPayloadNames(target: TargetSection, resolved: { debs: Record<string, string>; images: Record<string, string> }): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, p] of Object.entries(target.kubernetes.packages)) if (resolved.debs[`target/${name}`]) out[`debs/${debName(name, p.version)}`] = resolved.debs[`target/${name}`]!;
  if (target.containerd && resolved.debs[`target/${target.containerd.name}`]) out[`debs/${debName(target.containerd.name, target.containerd.version)}`] = resolved.debs[`target/${target.containerd.name}`]!;
  for (const ref of Object.keys(target.images)) if (resolved.images[`target/${ref}`]) out[`images/${imageArchiveName(ref)}`] = resolved.images[`target/${ref}`]!;
  return out;
}

/** The payload's files the plan uses, relative to the payload directory (`debs/…`, `images/…`). */
export function payloadFiles(target: TargetSection): string[] {
  const debs = Object.entries(target.kubernetes.packages).map(([n, p]) => `debs/${debName(n, p.version)}`);
  if (target.containerd) debs.push(`debs/${debName(target.containerd.name, target.containerd.version)}`);
  return [...debs, ...Object.keys(target.images).sort().map((ref) => `images/${imageArchiveName(ref)}`)].sort();
}

/** The image's deb822 source for the old minor goes; the one-line source of the target comes (upgrade-control-plane.sh writes the same). */
function aptSourceSwitch(source: string): string[] {
  return [`sudo rm -f /${KUBERNETES_GUEST_PATHS.aptSource}`, `echo ${q(`deb ${source} /`)} | sudo tee ${GUEST_KUBERNETES_APT_SOURCE}`];
}

function debName(name: string, version: string): string {
  return `${name}_${version.replace(/^\d+:/, '')}_amd64.deb`;
}

function addonStep(addon: AddonRelease, current: string | undefined, payloadDir: string): PlannedStep {
  const id = `addon-${addon.name}` as const;
  const title = `Upgrading ${addon.name} to ${addon.version}`;
  if (current === addon.version) return { id, title, disruptive: false, commands: [], noop: `${addon.name} already runs ${addon.version}, the version the target section lists for this minor` };
  const manifest = `${payloadDir}/manifests/${addon.name}.yaml`;
  const commands: Record<string, string[]> = {
    calico: [`${KUBECTL} apply --server-side --force-conflicts -f ${q(manifest)}`, `${KUBECTL} -n kube-system rollout status daemonset/calico-node --timeout=10m`],
    'cert-manager': [`${KUBECTL} apply --server-side --force-conflicts -f ${q(manifest)}`, `${KUBECTL} -n cert-manager rollout status deployment/cert-manager-webhook --timeout=10m`],
    traefik: [`${KUBECTL} -n traefik set image deployment/traefik traefik=docker.io/library/traefik:${addon.version}`, `${KUBECTL} -n traefik rollout status deployment/traefik --timeout=10m`],
    'local-path': [`${KUBECTL} apply --server-side --force-conflicts -f ${q(manifest)}`, `${KUBECTL} -n local-path-storage rollout status deployment/local-path-provisioner --timeout=10m`],
  };
  return { id, title, disruptive: false, commands: commands[addon.name] ?? [] };
}

/** The plan, once (call it only when the pre-checks passed). */
export function planUpgrade(inputs: UpgradeInputs): UpgradePlan {
  const target = inputs.target!;
  const facts = inputs.facts;
  const cluster = 'missing' in facts.cluster ? undefined : facts.cluster;
  const kubeadm = target.kubernetes.packages.kubeadm!;
  const packageVersion = kubeadm.version;
  const kubernetesVersion = kubernetesVersionOf(packageVersion);
  const nodeName = cluster?.nodeName ?? '';
  const payloadDir = inputs.payload?.kind === 'staged' ? inputs.payload.dir : `/${STAGED_UPGRADE_PATHS.dir}/${inputs.targetMinor}`;
  const required = minimumContainerdFor(inputs.targetMinor);
  const moveContainerd = checkContainerd(facts.containerdVersion, inputs.targetMinor).length > 0 && target.containerd !== undefined;
  const volumeDirs = cluster?.volumeDirs ?? [];
  const backup = UPGRADE_GUEST_PATHS.backupDir;

  const canaryWrites = volumeDirs.map((d) => `head -c 4096 /dev/urandom | sudo tee ${q(`${d}/${UPGRADE_GUEST_PATHS.canary}`)} >/dev/null && sudo sha256sum ${q(`${d}/${UPGRADE_GUEST_PATHS.canary}`)}`);
  const canaryChecks = volumeDirs.map((d) => `sudo sha256sum ${q(`${d}/${UPGRADE_GUEST_PATHS.canary}`)}   # must equal the baseline's`);
  const steps: PlannedStep[] = [];
  steps.push({
    id: 'baseline',
    title: 'Running the acceptance suite and writing canaries (baseline)',
    disruptive: false,
    commands: [
      'npm run test:e2e   # on the host, against the lab: the baseline',
      ...canaryWrites,
    ],
    production: ['npm run test:e2e -- --kubeconfig ADMIN.conf --host SERVER --ca LAB-CA.crt   # on your machine: the baseline', ...canaryWrites],
  });
  steps.push({
    id: 'rollback-point',
    title: 'Taking the rollback point (etcd snapshot, /etc/kubernetes, disk snapshot)',
    disruptive: true,
    commands: [
      `sudo mkdir -p ${q(backup)}`,
      `sudo crictl exec "$(sudo crictl ps --name '^etcd$' --state Running -q)" etcdctl ${renderSnapshotSaveArgs(KUBEADM_ETCD, `/var/lib/etcd/labsmith-pre-${inputs.targetMinor}.db`).map(q).join(' ')}`,
      `sudo mv /var/lib/etcd/labsmith-pre-${inputs.targetMinor}.db ${q(`${backup}/etcd-pre-${inputs.targetMinor}.db`)}`,
      `sudo tar -C / -czf ${q(`${backup}/etc-kubernetes-pre-${inputs.targetMinor}.tar.gz`)} etc/kubernetes`,
      '# copy both files off the machine (lab:upgrade copies them into the lab directory)',
      `# lab only: stop the VM, qemu-img snapshot -c ${inputs.snapshotTag} overlay.qcow2, start it (production: your hypervisor's snapshot)`,
    ],
  });
  steps.push({
    id: 'import-images',
    title: `Importing the ${inputs.targetMinor} images into containerd (k8s.io, pinned)`,
    disruptive: false,
    commands: Object.keys(target.images).sort().map((ref) => `sudo ctr -n k8s.io images import --label io.cri-containerd.pinned=pinned ${q(`${payloadDir}/images/${imageArchiveName(ref)}`)}`),
    // kubeadm runs with imagePullPolicy Never: production pulls them first, by the locked digests.
    production: Object.entries(target.images).sort(([a], [b]) => (a < b ? -1 : 1)).flatMap(([ref, i]) => [
      `sudo ctr -n k8s.io images pull --platform linux/amd64 ${q(`${imageRepository(ref)}@${i.amd64}`)} && sudo ctr -n k8s.io images tag --force ${q(`${imageRepository(ref)}@${i.amd64}`)} ${q(ref)} && sudo ctr -n k8s.io images label ${q(ref)} io.cri-containerd.pinned=pinned`,
    ]),
  });
  if (moveContainerd) {
    const c = target.containerd!;
    steps.push({
      id: 'containerd',
      title: `Moving containerd ${facts.containerdVersion.match(/\d+\.\d+\.\d+/)?.[0] ?? facts.containerdVersion} → ${c.version} (${c.suite})`,
      disruptive: true,
      commands: [
        `printf '%s' ${q(renderContainerdPreference(c))} | sudo tee /etc/apt/preferences.d/labsmith-containerd.pref >/dev/null`,
        `sudo apt-get install -y ${q(`${payloadDir}/debs/${debName(c.name, c.version)}`)}`,
        '# /etc/containerd/config.toml: containerd 2\'s version 3 file (lab/upgrade/containerd2-config.ts)',
        'sudo systemctl restart containerd && sudo systemctl restart kubelet',
        'sudo ctr -n k8s.io images ls   # the images imported before are present and pinned',
      ],
      production: [
        `printf '%s' ${q(renderContainerdPreference(c))} | sudo tee /etc/apt/preferences.d/labsmith-containerd.pref >/dev/null`,
        `printf 'Types: deb\\nURIs: ${c.release.uri}\\nSuites: ${c.suite}\\nComponents: main\\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\\n' | sudo tee /etc/apt/sources.list.d/${c.suite}.sources`,
        `sudo apt-get update && sudo apt-get install -y ${q(`${c.name}=${c.version}`)}   # sha256 ${c.sha256}`,
        '# /etc/containerd/config.toml: containerd 2\'s version 3 file (lab/upgrade/containerd2-config.ts)',
        'sudo systemctl restart containerd && sudo systemctl restart kubelet',
        'sudo ctr -n k8s.io images ls   # the images imported before are present and pinned',
      ],
    });
  }
  for (const addon of addonReleasesFor(inputs.targetMinor).filter((a) => a.when === 'before-control-plane')) steps.push(addonStep(addon, inputs.currentAddons[addon.name], payloadDir));
  steps.push({
    id: 'kubeadm',
    title: `Upgrading the control plane to ${kubernetesVersion} (kubeadm)`,
    disruptive: true,
    commands: [
      ...aptSourceSwitch(`[trusted=yes] file:${payloadDir}/debs`),
      'sudo apt-get update',
      'sudo apt-mark unhold kubeadm',
      `sudo apt-get install -y kubeadm=${q(packageVersion)}`,
      'sudo apt-mark hold kubeadm',
      `sudo kubeadm upgrade plan --config ${UPGRADE_GUEST_PATHS.config}`,
      `sudo kubeadm upgrade diff --config ${UPGRADE_GUEST_PATHS.config}`,
      `sudo kubeadm upgrade apply --config ${UPGRADE_GUEST_PATHS.config} --yes`,
      `${KUBECTL} drain ${q(nodeName)} --ignore-daemonsets --delete-emptydir-data --timeout=5m`,
      'sudo apt-mark unhold kubelet kubectl',
      `sudo apt-get install -y kubelet=${q(packageVersion)} kubectl=${q(packageVersion)}`,
      'sudo apt-mark hold kubelet kubectl',
      'sudo systemctl daemon-reload && sudo systemctl restart kubelet',
      `${KUBECTL} uncordon ${q(nodeName)}`,
      `${KUBECTL} wait --for=condition=Ready node/${q(nodeName)} --timeout=10m`,
    ],
  });
  const kubeadmStep = steps.at(-1)!;
  kubeadmStep.production = [...aptSourceSwitch(`[signed-by=${GUEST_KUBERNETES_APT_KEYRING}] ${target.kubernetes.repository}`), ...kubeadmStep.commands.slice(2)];
  for (const addon of addonReleasesFor(inputs.targetMinor).filter((a) => a.when === 'after-control-plane')) steps.push(addonStep(addon, inputs.currentAddons[addon.name], payloadDir));
  steps.push({
    id: 'after',
    title: 'Running the acceptance suite again, comparing it with the baseline, checking the canaries',
    disruptive: false,
    commands: ['npm run test:e2e   # on the host: compared check by check with the baseline', ...canaryChecks],
    production: ['npm run test:e2e -- --kubeconfig ADMIN.conf --host SERVER --ca LAB-CA.crt   # compare with the baseline check by check', ...canaryChecks, ...(volumeDirs.length ? [`sudo rm -f ${volumeDirs.map((d) => q(`${d}/${UPGRADE_GUEST_PATHS.canary}`)).join(' ')}`] : [])],
  });

  const packages = Object.entries(target.kubernetes.packages).map(([name, p]) => ({ name, version: p.version, sha256: p.sha256 }));
  if (target.containerd) packages.push({ name: target.containerd.name, version: target.containerd.version, sha256: target.containerd.sha256 });
  return {
    from: cluster?.serverVersion ?? '',
    to: inputs.targetMinor,
    packageVersion,
    kubernetesVersion,
    nodeName,
    containerd: { installed: facts.containerdVersion, required, ...(target.containerd ? { target: { version: target.containerd.version, sha256: target.containerd.sha256, suite: target.containerd.suite } } : {}) },
    packages: packages.sort((a, b) => (a.name < b.name ? -1 : 1)),
    images: Object.entries(target.images).map(([ref, i]) => ({ ref, digest: i.amd64 })).sort((a, b) => (a.ref < b.ref ? -1 : 1)),
    payloadDir,
    volumeDirs,
    snapshotTag: inputs.snapshotTag,
    steps,
  };
}

/** The pre-check problems as the CLI prints them (pure). */
export function renderPrecheckProblems(problems: PrecheckProblem[]): string {
  return `${problems.length} pre-check problem(s); nothing was changed:\n${problems.map((p) => `  - [${p.check}] ${p.message}\n      hint: ${p.hint}`).join('\n')}\n`;
}

/** The plan as `--dry-run` prints it (pure). */
export function renderUpgradePlan(plan: UpgradePlan): string {
  const lines = [
    `Upgrade plan: Kubernetes ${plan.from} → ${plan.kubernetesVersion} (packages ${plan.packageVersion}) on node ${plan.nodeName}`,
    `containerd: ${plan.containerd.installed}; ${plan.to} needs ≥ ${plan.containerd.required}${plan.steps.some((s) => s.id === 'containerd') ? `; moving to ${plan.containerd.target!.version} (${plan.containerd.target!.suite})` : ''}`,
    `payload: ${plan.payloadDir} (${plan.packages.length} packages, ${plan.images.length} images)`,
    '',
  ];
  plan.steps.forEach((s, i) => {
    lines.push(`${i + 1}. ${s.title}${s.disruptive ? '  [disruptive]' : ''}`);
    if (s.noop) lines.push(`     (nothing to do: ${s.noop})`);
    for (const c of s.commands) lines.push(`     ${c}`);
  });
  return `${lines.join('\n')}\n`;
}
