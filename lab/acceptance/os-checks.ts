/**
 * Checks an OS-level lab passes for real: the VM is reachable and configured the way the
 * kubelet needs, and host ports 80/443 reach the guest through the forwards. Until the
 * cluster carries an ingress controller a placeholder answers there; the checks say so.
 */
import { formatCommand } from '../../core/exec.ts';
import { PLACEHOLDER_SERVER_HEADER } from '../../cloud-init/placeholder-ingress.ts';
import { KUBERNETES_MODULES, KUBERNETES_SYSCTLS, LAB_CA_GUEST_PATH } from '../../cloud-init/user-data.ts';
import { renderSshArgs, sshRun } from '../ssh.ts';
import type { Check } from './check.ts';
import type { AcceptanceContext } from './context.ts';
import { httpGet, httpsGet } from './probes.ts';

/** The ssh command line that runs `cmd` on the node (or says where to run it when there is no SSH). */
export const remote = (ctx: AcceptanceContext, ...cmd: string[]) => (ctx.ssh ? formatCommand('ssh', [...renderSshArgs(ctx.ssh), '--', ...cmd]) : `(on the node) ${cmd.join(' ')}`);
/** Checks that need a shell on the node skip for a server given by --host (no lab SSH key). */
const needsSsh = (ctx: AcceptanceContext) => (ctx.ssh ? undefined : 'no SSH access to the node (server given by --host)');
const quick = { attempts: 3, intervalMs: 2000 };
/** Hosts no ingress route matches. */
export const UNKNOWN_HOST = 'unknown.labsmith.invalid';

export const HOST_CHECKS: Check<AcceptanceContext>[] = [
  {
    id: 'ssh',
    description: 'SSH reaches the VM with the lab key and pinned host key',
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
    retry: quick,
    hint: 'read /var/log/cloud-init.log and /var/log/cloud-init-output.log in the VM (npm run lab:ssh)',
    skip: needsSsh,
    reproduce: (ctx) => remote(ctx, 'cloud-init', 'status', '--long'),
    async probe(ctx, signal) {
      const r = await sshRun(ctx.ssh!, ['cloud-init', 'status', '--format', 'json'], { signal, allowFailure: true });
      const status = JSON.parse(r.stdout || '{}') as { status?: string; errors?: string[]; recoverable_errors?: Record<string, string[]> };
      const errors = [...(status.errors ?? []), ...Object.values(status.recoverable_errors ?? {}).flat()];
      return { ok: status.status === 'done' && errors.length === 0, detail: `status ${status.status ?? 'unknown'}${errors.length ? `; errors: ${errors.join('; ')}` : ''}` };
    },
  },
  {
    id: 'lab-ca-trusted',
    description: "the lab CA is in the VM's trust store",
    timeoutMs: 20_000,
    retry: quick,
    hint: 'the seed writes it to /usr/local/share/ca-certificates and appends it to /etc/ssl/certs/ca-certificates.crt (no update-ca-certificates at boot)',
    skip: needsSsh,
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
    retry: quick,
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
    id: 'kernel-prerequisites',
    description: `kernel modules ${KUBERNETES_MODULES.join(', ')} loaded and kubeadm's sysctls set`,
    timeoutMs: 20_000,
    retry: quick,
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
      retry: quick,
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

/** Only an OS-only lab runs the placeholder ingress; a cluster's ingress is checked by the cluster checks. */
export const PLACEHOLDER_CHECKS: Check<AcceptanceContext>[] = [
  {
    id: 'forward-http',
    description: 'host port http reaches the guest: unknown Host gets 404 (from the placeholder ingress)',
    timeoutMs: 30_000,
    retry: quick,
    hint: 'check network.forwards.http and that the placeholder service runs: systemctl status labsmith-placeholder-ingress',
    reproduce: (ctx) => formatCommand('curl', ['-si', '-H', `Host: ${UNKNOWN_HOST}`, `http://${ctx.address}:${ctx.ports.http}/`]),
    skip: (ctx) => (ctx.ports.http ? undefined : 'no http forward configured'),
    async probe(ctx, signal) {
      const r = await httpGet({ address: ctx.address, port: ctx.ports.http!, host: UNKNOWN_HOST, signal });
      const server = String(r.headers.server ?? '');
      return { ok: r.status === 404 && server.startsWith(PLACEHOLDER_SERVER_HEADER), detail: `HTTP ${r.status}, Server: ${server || '(none)'}` };
    },
  },
  {
    id: 'forward-https',
    description: 'host port https reaches the guest over TLS verified against the lab CA: 404 (from the placeholder ingress)',
    timeoutMs: 30_000,
    retry: quick,
    hint: 'check network.forwards.https; the certificate must chain to ca.crt in the lab directory',
    reproduce: (ctx) => formatCommand('curl', ['-si', '--cacert', `${ctx.stateDir ?? '.'}/ca.crt`, '--resolve', `${ctx.tlsName}:${ctx.ports.https}:${ctx.address}`, `https://${ctx.tlsName}:${ctx.ports.https}/`]),
    skip: (ctx) => (ctx.ports.https ? undefined : 'no https forward configured'),
    async probe(ctx, signal) {
      const r = await httpsGet({ address: ctx.address, port: ctx.ports.https!, host: ctx.tlsName, ca: ctx.caCert, signal });
      const server = String(r.headers.server ?? '');
      return {
        ok: r.status === 404 && server.startsWith(PLACEHOLDER_SERVER_HEADER),
        detail: `HTTP ${r.status}, Server: ${server || '(none)'}, certificate CN=${r.peer?.subject?.CN ?? '?'} issued by ${r.peer?.issuer?.CN ?? '?'}`,
      };
    },
  },
];

/** The checks that need no cluster; without one, the placeholder ingress is checked too. */
export function hostChecksFor(withCluster: boolean): Check<AcceptanceContext>[] {
  return withCluster ? HOST_CHECKS : [...HOST_CHECKS, ...PLACEHOLDER_CHECKS];
}
