/**
 * kubeadm's upgrade inputs (pure): the v1beta4 UpgradeConfiguration and the small file of
 * shell-quoted values that parameterises guest/upgrade-control-plane.sh. Field names checked
 * against kubeadm's v1beta4 types (cmd/kubeadm/app/apis/kubeadm/v1beta4/types.go:
 * UpgradeConfiguration.apply/plan/diff/node, UpgradeApplyConfiguration.kubernetesVersion,
 * imagePullPolicy, certificateRenewal, etcdUpgrade).
 */
import { shellQuote } from '../../core/exec.ts';
import { UPGRADE_GUEST_PATHS } from '../../core/paths.ts';

/** Where the rendered files go in the guest (core/paths.ts). */
export const GUEST_UPGRADE_CONFIG = UPGRADE_GUEST_PATHS.config;
export const GUEST_UPGRADE_PARAMS = UPGRADE_GUEST_PATHS.params;
export const GUEST_KUBERNETES_APT_SOURCE = '/etc/apt/sources.list.d/kubernetes.list';
export const GUEST_KUBERNETES_APT_KEYRING = '/etc/apt/keyrings/kubernetes-apt-keyring.gpg';

/** `kubernetesVersion` is the exact target, e.g. v1.38.0. Never pull: offline, a missing image must fail fast. */
export function renderUpgradeConfiguration(opts: { kubernetesVersion: string }): string {
  return `apiVersion: kubeadm.k8s.io/v1beta4
kind: UpgradeConfiguration
apply:
  kubernetesVersion: ${opts.kubernetesVersion}
  imagePullPolicy: Never
  certificateRenewal: true
  etcdUpgrade: true
plan:
  kubernetesVersion: ${opts.kubernetesVersion}
diff:
  kubernetesVersion: ${opts.kubernetesVersion}
node:
  imagePullPolicy: Never
`;
}

export interface UpgradeStepParams {
  /** e.g. 1.38 */
  targetMinor: string;
  /** e.g. v1.38.0, what `kubeadm version -o short` must print after the install */
  kubernetesVersion: string;
  /** the apt package version from the lock, e.g. 1.38.0-1.1 */
  packageVersion: string;
  /** the apt repository line's URI for the target minor (pkgs.k8s.io or the staged payload's file: repo) */
  aptRepoUri: string;
  nodeName: string;
  drainTimeout: string;
  readyTimeout: string;
  /** apt source options; default `signed-by=<keyring>` (the staged payload's file repository: `trusted=yes`). */
  aptSourceOptions?: string;
}

export function kubernetesAptRepoUri(minor: string): string {
  return `https://pkgs.k8s.io/core:/stable:/v${minor}/deb/`;
}

export function renderUpgradeStepParams(p: UpgradeStepParams, paths: { config: string; aptSource: string; aptKeyring: string } = { config: GUEST_UPGRADE_CONFIG, aptSource: GUEST_KUBERNETES_APT_SOURCE, aptKeyring: GUEST_KUBERNETES_APT_KEYRING }): string {
  const values: Record<string, string> = {
    TARGET_MINOR: p.targetMinor,
    KUBERNETES_VERSION: p.kubernetesVersion,
    PACKAGE_VERSION: p.packageVersion,
    APT_REPO_URI: p.aptRepoUri,
    APT_SOURCE_FILE: paths.aptSource,
    APT_KEYRING: paths.aptKeyring,
    UPGRADE_CONFIG: paths.config,
    NODE_NAME: p.nodeName,
    DRAIN_TIMEOUT: p.drainTimeout,
    READY_TIMEOUT: p.readyTimeout,
    ...(p.aptSourceOptions ? { APT_SOURCE_OPTIONS: p.aptSourceOptions } : {}),
  };
  return `# Written by labsmith: values for upgrade-control-plane.sh\n${Object.entries(values).map(([k, v]) => `${k}=${shellQuote(v)}`).join('\n')}\n`;
}
