/**
 * Health: the node's OS is set up the way the kubelet needs (host checks), and the cluster is
 * up (node Ready and schedulable, every system pod Ready, CoreDNS answering). lab:up's
 * readiness runs these; they import nothing of the suite's set-up, egress, reports or bundle.
 */
import { parseCloudInitStatus, renderCloudInitWaitScript } from '../../cloud-init-status.ts';
import { formatCommand, shellQuote } from '../../../core/exec.ts';
import { formatSize } from '../../../core/units.ts';
import { BOOTSTRAP_PATHS } from '../../../core/paths.ts';
import { TRAEFIK_NAMESPACE } from '../../../cloud-init/addons/traefik.ts';
import { KUBERNETES_MODULES, KUBERNETES_SYSCTLS, LAB_CA_GUEST_PATH } from '../../../cloud-init/user-data.ts';
import { resourcePath } from '../../kube/client.ts';
import { nodeVerdict, podsVerdict, type NodeObject, type PodObject } from '../../kube/readiness.ts';
import { sshRun } from '../../ssh.ts';
import type { Check } from '../check.ts';
import type { AcceptanceContext } from '../context.ts';
import { clusterOf, fail, isOutcome, kubectl, needsSsh, QUICK_RETRY, remote } from './common.ts';
import { PLACEHOLDER_CHECKS } from './placeholder.ts';

/** The namespaces whose pods must all be Ready: the control plane, Calico, and every add-on. */
export const SYSTEM_NAMESPACES = ['kube-system', TRAEFIK_NAMESPACE, 'cert-manager', 'local-path-storage'] as const;

/** On the node: kube-dns's ClusterIP, read with the admin kubeconfig. */
const KUBE_DNS_IP_ON_NODE = formatCommand('sudo', ['kubectl', '--kubeconfig', BOOTSTRAP_PATHS.adminKubeconfig, '-n', 'kube-system', 'get', 'service', 'kube-dns', '-o', 'jsonpath={.spec.clusterIP}']);

/** Listing the ESP triggers its automount; findmnt then shows the autofs point and the vfat over it. */
/** The root filesystem's size and its disk's, in bytes. */
const ROOT_SIZE_PROBE = 'df -B1 --output=size / | tail -n 1; lsblk -bdno SIZE "/dev/$(lsblk -no PKNAME "$(findmnt -no SOURCE /)")"';
const ROOT_SHARE_OF_DISK = 0.9;
const ESP_PROBE = 'ls /boot/efi/EFI >/dev/null && findmnt -n -o FSTYPE /boot/efi';

/** The node's OS: reachable, configured for the kubelet, its runtimes active. */
const HOST_CHECKS: Check<AcceptanceContext>[] = [
  {
    id: 'ssh',
    description: 'SSH reaches the VM with its key (the lab key, or a server operator key) and pinned host key',
    timeoutMs: 60_000,
    retry: { attempts: 10, intervalMs: 3000 },
    hint: 'is the VM running (npm run lab:status)? its console is serial.log in the lab directory',
    skip: needsSsh,
    reproduce: (ctx) => remote(ctx, 'true'),
    async probe(ctx, signal) {
      const r = await sshRun(ctx.ssh!, ['uname', '-sr'], { signal, allowFailure: true });
      return { ok: r.exitCode === 0, detail: r.exitCode === 0 ? r.stdout.trim() : `ssh exited ${r.exitCode}: ${r.stderr.trim().split('\n').pop()}` };
    },
  },
  {
    id: 'cloud-init',
    description: 'cloud-init finished without errors',
    timeoutMs: 60_000,
    retry: QUICK_RETRY,
    hint: 'read /var/log/cloud-init.log and /var/log/cloud-init-output.log in the VM (npm run lab:ssh)',
    skip: needsSsh,
    reproduce: (ctx) => remote(ctx, 'cloud-init', 'status', '--long'),
    async probe(ctx, signal) {
      // The files `cloud-init status` reads, read by the shell: no Python start-up in the guest.
      const r = await sshRun(ctx.ssh!, ['sh', '-c', renderCloudInitWaitScript(0)], { signal, allowFailure: true });
      const status = parseCloudInitStatus(r.stdout);
      const errors = [...status.errors, ...status.recoverableErrors];
      return { ok: status.state === 'done' && errors.length === 0, detail: `status ${r.exitCode === 0 ? status.state : `unknown (ssh exit ${r.exitCode})`}${errors.length ? `; errors: ${errors.join('; ')}` : ''}` };
    },
  },
  {
    id: 'lab-ca-trusted',
    description: "the lab CA is in the VM's trust store",
    timeoutMs: 20_000,
    retry: QUICK_RETRY,
    hint: 'the seed writes it to /usr/local/share/ca-certificates and appends it to /etc/ssl/certs/ca-certificates.crt (no update-ca-certificates at boot)',
    skip: (ctx) => (ctx.trustsLabCa === false ? "not applicable: a machine from the server seed trusts no lab CA (its certificates come from Let's Encrypt)" : needsSsh(ctx)),
    reproduce: (ctx) => remote(ctx, 'openssl', 'verify', '-CApath', '/etc/ssl/certs', LAB_CA_GUEST_PATH),
    async probe(ctx, signal) {
      // A self-signed CA verifies against the system store only if the store holds it.
      const r = await sshRun(ctx.ssh!, ['openssl', 'verify', '-CApath', '/etc/ssl/certs', LAB_CA_GUEST_PATH], { signal, allowFailure: true });
      return { ok: r.exitCode === 0, detail: (r.stdout || r.stderr).trim().split('\n').pop() ?? '' };
    },
  },
  {
    id: 'swap-off',
    description: 'swap is off (the kubelet refuses swap)',
    timeoutMs: 20_000,
    retry: QUICK_RETRY,
    hint: 'the seed turns swap off; check /etc/fstab and `swapon --show` in the VM',
    skip: needsSsh,
    reproduce: (ctx) => remote(ctx, 'cat', '/proc/swaps'),
    async probe(ctx, signal) {
      const r = await sshRun(ctx.ssh!, ['cat', '/proc/swaps'], { signal });
      const active = r.stdout.trim().split('\n').slice(1).filter(Boolean);
      return { ok: active.length === 0, detail: active.length ? `active swap: ${active.join('; ')}` : 'no active swap' };
    },
  },
  {
    id: 'esp-mounted',
    description: 'the EFI system partition mounts at /boot/efi on first access, where a GRUB or shim update writes',
    timeoutMs: 30_000,
    retry: QUICK_RETRY,
    hint: '/etc/fstab mounts it by its UUID with x-systemd.automount; see `systemctl status boot-efi.automount boot-efi.mount` in the VM',
    skip: needsSsh,
    reproduce: (ctx) => remote(ctx, 'sudo', 'sh', '-c', ESP_PROBE),
    async probe(ctx, signal) {
      const r = await sshRun(ctx.ssh!, ['sudo', 'sh', '-c', ESP_PROBE], { signal, allowFailure: true });
      const types = r.stdout.trim().split(/\s+/);
      return { ok: r.exitCode === 0 && types.includes('vfat'), detail: r.exitCode === 0 ? `mounted: ${types.join(' over ')}` : (r.stderr.trim().split('\n').pop() ?? `exit ${r.exitCode}`) };
    },
  },
  {
    id: 'root-filesystem-grown',
    description: 'the root filesystem spans its disk (the partition grown before boot by the qemu driver, or by growpart; the filesystem by resize2fs)',
    timeoutMs: 30_000,
    retry: QUICK_RETRY,
    hint: 'the qemu driver writes the grown partition table into the overlay (lab/drivers/grow-root.ts); cloud-init resizes the filesystem: see `lsblk` and /var/log/cloud-init.log in the VM',
    skip: needsSsh,
    reproduce: (ctx) => remote(ctx, 'sh', '-c', ROOT_SIZE_PROBE),
    async probe(ctx, signal) {
      const r = await sshRun(ctx.ssh!, ['sh', '-c', ROOT_SIZE_PROBE], { signal, allowFailure: true });
      const [fs, disk] = r.stdout.trim().split(/\s+/).map(Number);
      if (r.exitCode !== 0 || !fs || !disk) return { ok: false, detail: r.stderr.trim().split('\n').pop() || `unexpected output: ${r.stdout.trim()}` };
      // The ESP, the partition tables and ext4's own metadata take the rest.
      return { ok: fs >= ROOT_SHARE_OF_DISK * disk, detail: `filesystem ${formatSize(fs)} of a ${formatSize(disk)} disk` };
    },
  },
  {
    id: 'kernel-prerequisites',
    description: `kernel modules ${KUBERNETES_MODULES.join(', ')} loaded and kubeadm's sysctls set`,
    timeoutMs: 20_000,
    retry: QUICK_RETRY,
    hint: 'the seed writes /etc/modules-load.d and /etc/sysctl.d; check `sysctl -a` in the VM',
    skip: needsSsh,
    reproduce: (ctx) => remote(ctx, 'sh', '-c', `cut -d' ' -f1 /proc/modules; grep . ${Object.keys(KUBERNETES_SYSCTLS).map((k) => `/proc/sys/${k.replace(/\./g, '/')}`).join(' ')}`),
    async probe(ctx, signal) {
      // /proc/sys directly: sysctl(8) lives in /usr/sbin, outside a user's PATH.
      const reads = Object.keys(KUBERNETES_SYSCTLS).map((k) => `echo ${k}=$(cat /proc/sys/${k.replace(/\./g, '/')})`);
      const r = await sshRun(ctx.ssh!, ['sh', '-c', [`cut -d' ' -f1 /proc/modules`, ...reads].join('; ')], { signal });
      const lines = new Set(r.stdout.split('\n').map((l) => l.trim()));
      const missing = [
        ...KUBERNETES_MODULES.filter((m) => !lines.has(m)),
        ...Object.entries(KUBERNETES_SYSCTLS).filter(([k, v]) => !lines.has(`${k}=${v}`)).map(([k, v]) => `${k}=${v}`),
      ];
      return { ok: missing.length === 0, detail: missing.length ? `missing: ${missing.join(', ')}` : 'all present' };
    },
  },
  // Docker starts on first use of its socket (images/boot-files.ts): the socket listening is Docker available.
  ...([['containerd', 'containerd.service'], ['docker', 'docker.socket']] as const).map(
    ([name, unit]): Check<AcceptanceContext> => ({
      id: `${name}-active`,
      description: `${unit} is active`,
      timeoutMs: 30_000,
      retry: QUICK_RETRY,
      hint: `see \`journalctl -u ${unit}\` in the VM`,
      skip: needsSsh,
      reproduce: (ctx) => remote(ctx, 'systemctl', 'is-active', unit),
      async probe(ctx, signal) {
        const r = await sshRun(ctx.ssh!, ['systemctl', 'is-active', unit], { signal, allowFailure: true });
        return { ok: r.stdout.trim() === 'active', detail: r.stdout.trim() || r.stderr.trim() };
      },
    }),
  ),
];

/** The cluster is up: what lab:up waits for before it hands the cluster over. */
export const nodeReady: Check<AcceptanceContext> = {
  id: 'node-ready',
  description: 'the node is Ready and schedulable (no NoSchedule taint: the single node runs workloads)',
  timeoutMs: 5 * 60_000,
  retry: { attempts: 60, intervalMs: 5000 },
  hint: 'describe the node for its conditions; the kubelet log: journalctl -u kubelet',
  reproduce: (ctx) => kubectl(ctx, 'get', 'nodes', '-o', 'wide'),
  async probe(ctx, signal) {
    const kube = clusterOf(ctx);
    if (isOutcome(kube)) return kube;
    return nodeVerdict(await kube.list<NodeObject>('/api/v1/nodes', signal));
  },
};

export const systemPodsReady: Check<AcceptanceContext> = {
  id: 'system-pods-ready',
  description: `every pod in ${SYSTEM_NAMESPACES.join(', ')} is Ready (control plane, Calico, CoreDNS, ingress, cert-manager, storage)`,
  timeoutMs: 10 * 60_000,
  retry: { attempts: 120, intervalMs: 5000 },
  hint: 'the detail names the pods and why; kubectl describe pod shows their events',
  reproduce: (ctx) => kubectl(ctx, 'get', 'pods', '-A', '-o', 'wide'),
  async probe(ctx, signal) {
    const kube = clusterOf(ctx);
    if (isOutcome(kube)) return kube;
    const pods: PodObject[] = [];
    const empty: string[] = [];
    for (const ns of SYSTEM_NAMESPACES) {
      const items = await kube.list<PodObject>(resourcePath('v1', 'Pod', ns), signal);
      if (!items.length) empty.push(ns);
      pods.push(...items);
    }
    if (empty.length) return fail(`no pods in ${empty.join(', ')}: is that add-on installed?`);
    return podsVerdict(pods, SYSTEM_NAMESPACES.join(', '));
  },
};

/** From the node itself: lab:up's last word before it hands the cluster over. */
const corednsAnswersFromNode: Check<AcceptanceContext> = {
  id: 'coredns-answers',
  description: 'CoreDNS answers kubernetes.default.svc.<dnsDomain> on its Service address',
  timeoutMs: 5 * 60_000,
  retry: { attempts: 60, intervalMs: 5000 },
  hint: 'check the CoreDNS pods and their logs: kubectl -n kube-system logs -l k8s-app=kube-dns',
  // The same probe, with the address read on the node as the probe does through the API.
  reproduce: (ctx) => remote(ctx, 'sh', '-c', `python3 ${shellQuote(BOOTSTRAP_PATHS.dnsProbe)} "$(${KUBE_DNS_IP_ON_NODE})" ${shellQuote(`kubernetes.default.svc.${ctx.dnsDomain}`)}`),
  skip: (ctx) => (ctx.ssh ? undefined : 'no SSH access to the node (server given by --host): the in-cluster DNS check covers it'),
  async probe(ctx, signal) {
    const kube = clusterOf(ctx);
    if (isOutcome(kube)) return kube;
    const ip = (await kube.get<{ spec: { clusterIP: string } }>(resourcePath('v1', 'Service', 'kube-system', 'kube-dns'), signal)).spec.clusterIP;
    const name = `kubernetes.default.svc.${ctx.dnsDomain}`;
    const r = await sshRun(ctx.ssh!, ['python3', BOOTSTRAP_PATHS.dnsProbe, ip, name], { signal, allowFailure: true });
    return { ok: r.exitCode === 0, detail: r.exitCode === 0 ? `${name} → ${r.stdout.trim()} (from ${ip})` : `${name} via ${ip}: ${(r.stderr || r.stdout).trim()}` };
  },
};

export const CLUSTER_READY_CHECKS: Check<AcceptanceContext>[] = [nodeReady, systemPodsReady, corednsAnswersFromNode];

/** The checks that need no cluster; without one, the placeholder ingress is checked too. */
export function hostChecksFor(withCluster: boolean): Check<AcceptanceContext>[] {
  return withCluster ? HOST_CHECKS : [...HOST_CHECKS, ...PLACEHOLDER_CHECKS];
}
