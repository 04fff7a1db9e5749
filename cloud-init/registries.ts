/**
 * The user's registries in the guest (pure): containerd's per-registry `hosts.toml` with the
 * registry's CA under the image's `config_path` (CONTAINERD_CERTS_DIR, read at every pull, so
 * nothing restarts), and the kubelet's credentials.
 *
 * Credentials: hosts.toml has no credential field, and containerd's own `registry.configs.*.auth`
 * lives in config.toml, which is baked into the image and read only when containerd starts. The
 * kubelet pulls every pod's image and hands CRI the credentials it finds in its keyring;
 * `/var/lib/kubelet/config.json` (its --root-dir) is that keyring's file, in Docker's
 * config.json format. That file is node-wide (every namespace and ServiceAccount, unlike an
 * imagePullSecret on the default ServiceAccounts), root-owned 0600 on the node (no Secret in
 * the API that anyone who reads Secrets sees), needs no kubelet flag or plugin binary (unlike an
 * image credential provider), and is in place before the kubelet first starts.
 */
import { CONTAINERD_CERTS_DIR } from './containerd-config.ts';
import { GUEST_PATHS } from '../core/paths.ts';

/** A registry with its files read (lab:up) or named by placeholders (lab:render). */
export interface RegistryMaterial {
  host: string;
  mirrorOf?: string;
  /** PEM of the registry's CA. */
  caPem?: string;
  /** Read at lab:up; lab:render has only a placeholder naming where they come from. */
  credentials?: { username: string; password: string } | { placeholder: string };
}

export interface GuestFile {
  path: string;
  content: string;
  permissions: string;
}

/** Where containerd looks for a registry's settings: certs.d/<host[:port]>/. */
export const registryDir = (host: string) => `${CONTAINERD_CERTS_DIR}/${host}`;

/** The upstream endpoint containerd falls back to for a mirrored registry (Docker Hub's is not docker.io). */
export const upstreamServer = (registry: string) => (registry === 'docker.io' ? 'https://registry-1.docker.io' : `https://${registry}`);

function hostSection(r: RegistryMaterial): string {
  return [`[host."https://${r.host}"]`, '  capabilities = ["pull", "resolve"]', ...(r.caPem !== undefined ? [`  ca = "${registryDir(r.host)}/ca.crt"`] : []), ''].join('\n');
}

/** certs.d/<host>/hosts.toml: the registry itself, verified against its CA. */
export function renderRegistryHostsToml(r: RegistryMaterial): string {
  return [`# Written by labsmith from lab.yaml registries: ${r.host}`, `server = "https://${r.host}"`, '', hostSection(r)].join('\n');
}

/** certs.d/<mirrorOf>/hosts.toml: that registry's images from the mirror first, then upstream where it is reachable. */
export function renderMirrorHostsToml(r: RegistryMaterial & { mirrorOf: string }): string {
  return [`# Written by labsmith from lab.yaml registries: ${r.mirrorOf} is mirrored by ${r.host}`, `server = "${upstreamServer(r.mirrorOf)}"`, '', hostSection(r)].join('\n');
}

/**
 * The kubelet's keyring file. A mirror's credentials are also filed under the registry it
 * mirrors: the kubelet looks them up by the name in the image reference.
 */
export function renderKubeletRegistryAuth(registries: RegistryMaterial[]): string | undefined {
  const auths: Record<string, { auth: string }> = {};
  for (const r of registries) {
    if (!r.credentials) continue;
    const auth = 'placeholder' in r.credentials ? r.credentials.placeholder : Buffer.from(`${r.credentials.username}:${r.credentials.password}`).toString('base64');
    auths[r.host] = { auth };
    if (r.mirrorOf) auths[r.mirrorOf] = { auth };
  }
  return Object.keys(auths).length ? `${JSON.stringify({ auths }, null, 2)}\n` : undefined;
}

/** Every file the registries put into the guest; the credentials owner-only. */
export function renderRegistryFiles(registries: RegistryMaterial[]): GuestFile[] {
  const files: GuestFile[] = [];
  for (const r of registries) {
    files.push({ path: `${registryDir(r.host)}/hosts.toml`, content: renderRegistryHostsToml(r), permissions: '0644' });
    if (r.caPem !== undefined) files.push({ path: `${registryDir(r.host)}/ca.crt`, content: r.caPem, permissions: '0644' });
    if (r.mirrorOf) files.push({ path: `${registryDir(r.mirrorOf)}/hosts.toml`, content: renderMirrorHostsToml({ ...r, mirrorOf: r.mirrorOf }), permissions: '0644' });
  }
  const auth = renderKubeletRegistryAuth(registries);
  if (auth) files.push({ path: GUEST_PATHS.kubeletRegistryAuth, content: auth, permissions: '0600' });
  return files;
}
