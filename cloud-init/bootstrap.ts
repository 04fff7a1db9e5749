/**
 * The first-boot bootstrap (pure renderers): one systemd unit runs cloud-init/guest/bootstrap.sh,
 * shipped as it is in the repository, with the parameters rendered here into its parameter file.
 * The script brings the cluster up from the files the seed delivered, step by step, resuming after
 * the last finished step.
 */
import { BOOTSTRAP_PATHS, GUEST_PARAM_FILES, GUEST_UNITS } from '../core/paths.ts';
import type { AddonManifest } from './addons/bundle.ts';
import { CERT_MANAGER, WILDCARD_CERTIFICATE } from './addons/cert-manager.ts';
import { CONTAINERD_SOCKET } from './addons/kubeadm-config.ts';
import { TRAEFIK_NAMESPACE } from './addons/traefik.ts';
import { renderParamFile, type GuestParams } from './guest-params.ts';
import { guestScript } from './guest-scripts.ts';

export const BOOTSTRAP_UNIT = GUEST_UNITS.bootstrap;
/** The Kubernetes layer's unit that imports the baked images (images/kubernetes/rootfs-files.ts). */
const IMPORT_UNIT = GUEST_UNITS.importImages;

export interface BootstrapPlan {
  /** The add-on manifests in apply order (file names sort into it). */
  addons: AddonManifest[];
  dnsDomain: string;
}

/** Seconds each wait may take under emulation (TCG): generous, since a wait ends as soon as the thing is ready. */
export const BOOTSTRAP_WAITS = { api: 600, node: 900, rollout: 900, certificate: 600, dns: 300 } as const;

const ADDON_FILE = /^[0-9]+-[a-z0-9-]+\.yaml$/;

/**
 * The bootstrap's parameters. `paths` defaults to the node's own; a test points them into a temp
 * directory and passes the file to the script exactly as the unit does.
 */
export function bootstrapParams(
  plan: BootstrapPlan,
  opts: { paths?: Partial<Record<'BOOTSTRAP_DIR' | 'KUBEADM_CONFIG' | 'ADMIN_KUBECONFIG' | 'STATE_DIR' | 'DNS_PROBE', string>>; waits?: Partial<Record<keyof typeof BOOTSTRAP_WAITS, number>>; pollSeconds?: number } = {},
): GuestParams {
  const files = plan.addons.map((a) => a.file).sort();
  for (const f of files) if (!ADDON_FILE.test(f)) throw new Error(`add-on file ${f}: names are NN-name.yaml (the prefix orders the steps)`);
  const waits = { ...BOOTSTRAP_WAITS, ...opts.waits };
  return {
    BOOTSTRAP_DIR: BOOTSTRAP_PATHS.dir,
    KUBEADM_CONFIG: BOOTSTRAP_PATHS.kubeadmConfig,
    ADMIN_KUBECONFIG: BOOTSTRAP_PATHS.adminKubeconfig,
    STATE_DIR: BOOTSTRAP_PATHS.stateDir,
    DNS_PROBE: BOOTSTRAP_PATHS.dnsProbe,
    ...opts.paths,
    CRI_SOCKET: CONTAINERD_SOCKET,
    ADDONS: files.join(' '),
    IMPORT_UNIT,
    DNS_NAME: `kubernetes.default.svc.${plan.dnsDomain}`,
    CERT_MANAGER_NAMESPACE: CERT_MANAGER.namespace,
    TRAEFIK_NAMESPACE,
    WILDCARD_CERTIFICATE,
    WAIT_API: waits.api,
    WAIT_NODE: waits.node,
    WAIT_ROLLOUT: waits.rollout,
    WAIT_CERTIFICATE: waits.certificate,
    WAIT_DNS: waits.dns,
    POLL_SECONDS: opts.pollSeconds ?? 3,
  };
}

export function renderBootstrapParams(plan: BootstrapPlan, opts?: Parameters<typeof bootstrapParams>[1]): string {
  return renderParamFile('bootstrap.sh', bootstrapParams(plan, opts));
}

/** The script itself: the repository's file, unchanged. */
export function bootstrapScript(): string {
  return guestScript('bootstrap');
}

export function dnsProbeScript(): string {
  return guestScript('dnsProbe');
}

export function renderBootstrapUnit(): string {
  return `[Unit]
Description=labsmith: bring up the single-node Kubernetes cluster
Wants=network-online.target
After=network-online.target containerd.service ${IMPORT_UNIT}
ConditionPathExists=!${BOOTSTRAP_PATHS.complete}

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=${BOOTSTRAP_PATHS.script} ${GUEST_PARAM_FILES.bootstrap}
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
`;
}
