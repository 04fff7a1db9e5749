/**
 * The real server's NoCloud seed (pure, issue 11), rendered by the lab's own renderers
 * (planUserData, renderMetaData, the cluster add-ons) with the server's differences laid on
 * top: its hostname and domain, the user's own authorized keys, no lab CA in the trust store,
 * its own syslog target, a static address matched by MAC, and Let's Encrypt issuers instead
 * of the lab CA. No host port forwarding: the server owns its ports.
 */
import { stringify } from 'yaml';
import { LabError } from '../core/errors.ts';
import { GUEST_PATHS } from '../core/paths.ts';
import type { LabConfig, ServerLetsEncrypt, ServerProfile } from '../config/lab-config.ts';
import { LOCAL_PATH_HELPER_IMAGE, renderAddonManifests, type AddonManifest, type UpstreamTexts } from './addons/bundle.ts';
import { renderLetsEncryptIssuer, renderWildcardCertificate, WILDCARD_SECRET } from './addons/cert-manager.ts';
import { renderKubeadmConfig } from './addons/kubeadm-config.ts';
import type { K8sObject } from './addons/k8s-object.ts';
import { patchLocalPathManifest, STABLE_PATH_PATTERN } from './addons/local-path.ts';
import { TRAEFIK_NAMESPACE } from './addons/traefik.ts';
import { pauseImageOf } from './cluster-seed.ts';
import { renderServerNetworkConfig } from './network-config.ts';
import type { RegistryMaterial } from './registries.ts';
import { LAB_CA_GUEST_PATH, planUserData, renderMetaData, renderUserDataDocument, type ClusterSeed, type SeedFiles } from './user-data.ts';

export interface ServerSeedInputs {
  /** authorized_keys lines from the user's own files. */
  authorizedKeys: string[];
  /** The server's SSH host key, made at server:seed so the first login can pin it. */
  hostKey: { privateKey: string; publicKey: string };
  /** A self-signed certificate for the OS-only placeholder ingress (a cluster gets Let's Encrypt's). */
  placeholderTls: { certPem: string; keyPem: string };
  /** lab.yaml `registries:`, read: the server pulls from the same registries as the lab. */
  registries?: RegistryMaterial[];
}

/** The config the lab renderers see for the server: its name, domain and log target. */
export function serverView(config: LabConfig): LabConfig & { server: ServerProfile } {
  const server = config.server;
  if (!server) throw new LabError('lab.yaml has no server section', 'add `server:` with domain, network and authorizedKeyFiles (see README, "The server profile")', 2);
  return {
    ...config,
    name: server.hostname,
    server,
    addons: { ...config.addons, ingressDomain: server.domain, ...(server.logTarget ? { logTarget: server.logTarget } : {}) },
  };
}

export function renderServerSeedFiles(config: LabConfig, inputs: ServerSeedInputs, cluster?: ClusterSeed): SeedFiles {
  if (inputs.authorizedKeys.length === 0) throw new LabError('no authorized keys for the server', 'list files with your SSH public keys in server.authorizedKeyFiles', 2);
  const view = serverView(config);
  const ud = planUserData(
    view,
    { sshPublicKey: inputs.authorizedKeys[0]!, hostKey: inputs.hostKey, caCert: inputs.placeholderTls.certPem, tlsCert: inputs.placeholderTls.certPem, tlsKey: inputs.placeholderTls.keyPem, registries: inputs.registries },
    cluster,
  );
  const cc = ud.cloudConfig as typeof ud.cloudConfig & { users: { ssh_authorized_keys: string[] }[] };
  cc.fqdn = `${view.server.hostname}.${view.server.domain}`;
  cc.users[0]!.ssh_authorized_keys = inputs.authorizedKeys.map((k) => k.trim());
  // The lab CA is not trusted on the server: its certificates come from Let's Encrypt.
  const labCaFiles = new Set([LAB_CA_GUEST_PATH, `${GUEST_PATHS.tlsDir}/ca.crt`]);
  cc.write_files = cc.write_files.filter((f) => !labCaFiles.has(f.path));
  cc.runcmd = cc.runcmd.filter((c) => c[0] !== 'update-ca-certificates');
  ud.files = ud.files.filter((f) => !labCaFiles.has(f.path));
  const userData = renderUserDataDocument(ud);
  return { 'user-data': userData, 'meta-data': renderMetaData(view, userData), 'network-config': renderServerNetworkConfig(view.server.network) };
}

/** Let's Encrypt issuers and the ingress certificate: DNS-01 issues *.<domain>, HTTP-01 the listed names. */
export function renderServerTlsObjects(domain: string, le: ServerLetsEncrypt): K8sObject[] {
  const issuer = renderLetsEncryptIssuer({ email: le.email, server: le.server, solver: le.solver });
  // Staging too, so a first try does not spend production's rate limits.
  const staging = le.server === 'staging' ? [] : [renderLetsEncryptIssuer({ email: le.email, server: 'staging', solver: le.solver })];
  const wildcard = renderWildcardCertificate({ domain, namespace: TRAEFIK_NAMESPACE, issuer: issuer.metadata.name });
  const certificate =
    le.solver.type === 'dns01-rfc2136'
      ? wildcard
      : { ...wildcard, metadata: { ...wildcard.metadata, name: 'server-tls' }, spec: { ...(wildcard.spec as object), secretName: WILDCARD_SECRET, commonName: le.names[0], dnsNames: le.names } };
  return [issuer, ...staging, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: TRAEFIK_NAMESPACE } }, certificate];
}

/**
 * The cluster part for the server: the lab's add-ons with stable local-path volumes kept on
 * release, and Let's Encrypt in place of the lab CA manifest.
 */
export function renderServerClusterSeed(config: LabConfig, opts: { kubernetesVersion: string; lockedImages: string[]; upstream: UpstreamTexts; certSANs: string[] }): ClusterSeed {
  const view = serverView(config);
  const le = view.server.letsEncrypt;
  if (!le) throw new LabError('server.letsEncrypt is not set', "the server's ingress certificate comes from Let's Encrypt: set server.letsEncrypt (email and solver)", 2);
  const pauseImage = pauseImageOf(opts.lockedImages);
  if (!pauseImage) throw new LabError('the lock file lists no pause image', 'run `npm run image:lock` where the registries are reachable');
  const localPath = patchLocalPathManifest(opts.upstream['local-path'], { dataDir: view.addons.storageDir, helperImage: LOCAL_PATH_HELPER_IMAGE, pathPattern: STABLE_PATH_PATTERN, reclaimPolicy: 'Retain' });
  const addons: AddonManifest[] = renderAddonManifests(view, opts.upstream).map((a) => (a.file === '40-local-path.yaml' ? { ...a, text: localPath } : a));
  addons.push({ file: '30-server-tls.yaml', text: renderServerTlsObjects(view.server.domain, le).map((o) => stringify(o, { lineWidth: 0 })).join('---\n') });
  addons.sort((a, b) => (a.file < b.file ? -1 : 1));
  return { kubeadmConfig: renderKubeadmConfig(view, { kubernetesVersion: opts.kubernetesVersion, advertiseAddress: view.server.network.ipv4?.address.split('/')[0], certSANs: opts.certSANs }), addons, pauseImage };
}
