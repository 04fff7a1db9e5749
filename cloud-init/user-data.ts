/**
 * NoCloud seed files rendered from the lab config (pure). The VM gets its user and per-lab
 * SSH key, ed25519 host keys only, no swap, the lab CA, and the placeholder ingress with the
 * lab's certificate. What is not per lab (kubeadm's modules and sysctls, containerd's config)
 * is baked into the image, so the first boot restarts nothing.
 */
import { parse, stringify } from 'yaml';
import { guestScript } from './guest-scripts.ts';
import { readTarBuffer, renderTar } from '../core/tar.ts';
import { sha256 } from '../core/hash.ts';
import { BOOTSTRAP_PATHS, GUEST_PARAM_FILES, GUEST_PATHS } from '../core/paths.ts';
import { LOG_TARGET_PATTERN, type LabConfig } from '../config/lab-config.ts';
import { placeholderScript, renderPlaceholderParams, renderPlaceholderUnit } from './placeholder-ingress.ts';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { AddonManifest } from './addons/bundle.ts';
import { renderRsyslogForwarding, type LogTarget } from './addons/rsyslog.ts';
import { renderRegistryFiles, type RegistryMaterial } from './registries.ts';
import { BOOTSTRAP_UNIT, bootstrapScript, dnsProbeScript, renderBootstrapParams, renderBootstrapUnit } from './bootstrap.ts';

export interface SeedSecrets {
  sshPublicKey: string;
  /** The guest's SSH host key, made on the host so the client can pin it (no trust on first use). */
  hostKey: { privateKey: string; publicKey: string };
  /** PEM: the lab CA certificate, and the placeholder's certificate and key signed by it. */
  caCert: string;
  tlsCert: string;
  tlsKey: string;
  /** lab.yaml `registries:` with their CA and credentials read (placeholders in lab:render). */
  registries?: RegistryMaterial[];
}

/** What a Kubernetes lab's first boot needs beyond the OS: rendered by lab:up from lab.yaml and the lock. */
export interface ClusterSeed {
  kubeadmConfig: string;
  /** Every add-on manifest, the lab TLS one (with the CA key) included. */
  addons: AddonManifest[];
  /** kubeadm's pause image for the locked version: containerd's sandbox image. */
  pauseImage: string;
}

export interface SeedFiles {
  'user-data': string;
  'meta-data': string;
  'network-config': string;
}

export const LAB_CA_GUEST_PATH = '/usr/local/share/ca-certificates/labsmith-lab-ca.crt';
/** The system bundle (OpenSSL's default CA file, curl's, Python's): the lab CA is appended to it. */
export const SYSTEM_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
import { KUBERNETES_MODULES, KUBERNETES_SYSCTL_FILE } from '../images/boot-files.ts';
export { KUBERNETES_MODULES, KUBERNETES_SYSCTLS } from '../images/boot-files.ts';

/**
 * The cloud-init modules this seed uses, per stage (the image's list runs ~40, each an import
 * and a log entry under emulation). The partition and filesystem grow in the final stage,
 * after SSH is up, instead of in the network stage that sshd waits for; where the driver grew the
 * partition before boot (SeedOptions.rootPartitionGrown) only the filesystem does. runcmd only
 * writes its script (scripts_user runs it): it runs in the final stage too, so the config stage
 * has no module and costs the least beside containerd's start.
 */
export function seedModules(opts: SeedOptions = {}) {
  return {
    cloud_init_modules: ['write_files', 'mounts', 'set_hostname', 'update_hostname', 'update_etc_hosts', 'users_groups', 'ssh'],
    // locale, timezone and password authentication are baked into the image (images/boot-files.ts).
    cloud_config_modules: [],
    cloud_final_modules: [...(opts.rootPartitionGrown ? [] : ['growpart']), 'resizefs', 'runcmd', 'scripts_user', 'final_message'],
  };
}

export interface SeedOptions {
  /** The driver grew the root partition to the disk before boot (images/gpt.ts): no growpart in the guest. */
  rootPartitionGrown?: boolean;
}

export function guestPort(config: LabConfig, name: string, fallback: number): number {
  return config.network.forwards.find((f) => f.name === name)?.guest ?? fallback;
}

export function parseLogTarget(target: string): LogTarget {
  const m = LOG_TARGET_PATTERN.exec(target);
  if (!m) throw new Error(`bad log target ${target}`);
  return { protocol: m[1] as 'udp' | 'tcp', host: m[2]!, port: Number(m[3]) };
}

type WriteFile = { path: string; content: string; permissions: string; append?: boolean };
/** A file the seed's archive part writes (renderUserDataDocument). */
export type SeedFile = { path: string; content: string; permissions: string };

function clusterFiles(config: LabConfig, cluster: ClusterSeed): SeedFile[] {
  return [
    { path: BOOTSTRAP_PATHS.kubeadmConfig, content: cluster.kubeadmConfig, permissions: '0600' },
    // 0600: the lab TLS manifest carries the CA key.
    ...cluster.addons.map((a) => ({ path: `${BOOTSTRAP_PATHS.dir}/${a.file}`, content: a.text, permissions: '0600' })),
    // The scripts are the repository's files as they are; what varies per lab is in the parameter file.
    { path: BOOTSTRAP_PATHS.script, content: bootstrapScript(), permissions: '0755' },
    { path: GUEST_PARAM_FILES.bootstrap, content: renderBootstrapParams({ addons: cluster.addons, dnsDomain: config.kubernetes.dnsDomain }), permissions: '0644' },
    { path: BOOTSTRAP_PATHS.dnsProbe, content: dnsProbeScript(), permissions: '0755' },
    { path: BOOTSTRAP_PATHS.unit, content: renderBootstrapUnit(), permissions: '0644' },
  ];
}

function placeholderFiles(config: LabConfig, secrets: SeedSecrets): SeedFile[] {
  const tls = GUEST_PATHS.tlsDir;
  return [
    { path: `${tls}/placeholder.crt`, content: secrets.tlsCert, permissions: '0644' },
    { path: `${tls}/placeholder.key`, content: secrets.tlsKey, permissions: '0600' },
    { path: GUEST_PATHS.placeholderScript, content: placeholderScript(), permissions: '0755' },
    {
      path: GUEST_PARAM_FILES.placeholderIngress,
      content: renderPlaceholderParams({ httpPort: guestPort(config, 'http', 30080), httpsPort: guestPort(config, 'https', 30443) }),
      permissions: '0644',
    },
    {
      path: GUEST_PATHS.placeholderUnit,
      content: renderPlaceholderUnit({ scriptPath: GUEST_PATHS.placeholderScript, certFile: `${tls}/placeholder.crt`, keyFile: `${tls}/placeholder.key` }),
      permissions: '0644',
    },
  ];
}

export const RSYSLOG_FORWARDING_PATH = '/etc/rsyslog.d/60-labsmith-containers.conf';

/**
 * With a cluster, the bootstrap unit starts without blocking cloud-init (lab:up waits for it);
 * without one, the placeholder ingress answers on the ingress NodePorts so an OS-only lab's
 * forwarding can still be checked end to end.
 */
export function planUserData(config: LabConfig, secrets: SeedSecrets, cluster?: ClusterSeed, opts: SeedOptions = {}): UserData {
  const tls = GUEST_PATHS.tlsDir;
  const cloudConfig = {
    hostname: config.name,
    fqdn: `${config.name}.${config.kubernetes.dnsDomain}`,
    prefer_fqdn_over_hostname: false,
    manage_etc_hosts: true,
    // RSA/ECDSA key generation costs ~30 s under emulation and nothing uses them.
    ssh_genkeytypes: ['ed25519'],
    ssh_deletekeys: true,
    ssh_keys: { ed25519_private: secrets.hostKey.privateKey, ed25519_public: secrets.hostKey.publicKey.trim() },
    // The host pins the key it made: fingerprints on the console are ~3 s of ssh-keygen under TCG for nobody.
    ssh: { emit_keys_to_console: false },
    no_ssh_fingerprints: true,
    disable_root: true,
    users: [
      {
        name: config.ssh.user,
        gecos: 'labsmith lab user',
        groups: ['sudo', 'docker'],
        shell: '/bin/bash',
        sudo: 'ALL=(ALL) NOPASSWD:ALL',
        lock_passwd: true,
        ssh_authorized_keys: [secrets.sshPublicKey.trim()],
      },
    ],
    ...(opts.rootPartitionGrown ? {} : { growpart: { mode: 'auto', devices: ['/'] } }),
    // The filesystem grows in the background, off the critical path.
    resize_rootfs: 'noblock',
    // The kubelet refuses to run with swap on.
    swap: { size: 0 },
    write_files: [
      { path: `${tls}/ca.crt`, content: secrets.caCert, permissions: '0644' },
      // Trusted without update-ca-certificates (a minute of emulated CPU rehashing the whole
      // store): appended to the bundle, and in the local store so a later full run keeps it.
      { path: LAB_CA_GUEST_PATH, content: secrets.caCert, permissions: '0644' },
      { path: SYSTEM_CA_BUNDLE, content: secrets.caCert, permissions: '0644', append: true },
      ...(config.addons.logTarget ? [{ path: RSYSLOG_FORWARDING_PATH, content: renderRsyslogForwarding({ target: parseLogTarget(config.addons.logTarget) }), permissions: '0644' }] : []),
      // containerd reads certs.d at each pull, and the kubelet's keyring is there before it starts.
      ...renderRegistryFiles(secrets.registries ?? []),
    ] as WriteFile[],
    // write_files runs before sysinit.target (cloud-init's network stage), so containerd and
    // rsyslog start with their files in place: nothing is restarted. systemd loads a unit file
    // written since boot when it is started, so no daemon-reload either. The lab's own services'
    // files, which only runcmd's units read, come in the archive part (renderUserDataDocument).
    ...seedModules(opts),
    runcmd: [
      ['swapoff', '-a'],
      // Normally loaded and applied at boot already (then this is instant): a guard for a starved
      // host, where systemd-modules-load can time out. One file, not `sysctl --system`.
      ['modprobe', '-a', ...KUBERNETES_MODULES],
      ['sysctl', '-q', '-p', KUBERNETES_SYSCTL_FILE],
      cluster ? ['systemctl', 'enable', '--now', '--no-reload', '--no-block', BOOTSTRAP_UNIT] : ['systemctl', 'enable', '--now', '--no-reload', 'labsmith-placeholder-ingress.service'],
    ],
  };
  return { cloudConfig, files: cluster ? clusterFiles(config, cluster) : placeholderFiles(config, secrets) };
}

/** The seed's cloud-config, and the files its archive part writes before runcmd runs. */
export interface UserData {
  cloudConfig: Record<string, unknown> & { write_files: WriteFile[]; runcmd: string[][] };
  files: SeedFile[];
}

export function renderUserData(config: LabConfig, secrets: SeedSecrets, cluster?: ClusterSeed, opts: SeedOptions = {}): string {
  return renderUserDataDocument(planUserData(config, secrets, cluster, opts));
}

const MIME_BOUNDARY = '==labsmith-seed==';
const ARCHIVE_PART_NAME = '00-labsmith-files.sh';
/** The line of unpack-seed-files.sh after which the archive's base64 follows. */
const ARCHIVE_MARKER = '\n__SEED_FILES__\n';

/**
 * The user-data document (pure). The cloud-config alone when there are no files; otherwise a
 * MIME multipart: the cloud-config, and a shell part (cloud-init/guest/unpack-seed-files.sh with a
 * gzip'd tar of the files after it) that scripts_user runs before runcmd's script (its name sorts
 * first). cloud-init parses the cloud-config in pure Python several times per stage, about a
 * second each for a cluster seed's ~160 KB under emulation; the shell part it stores unparsed.
 */
export function renderUserDataDocument(ud: UserData): string {
  const cloudConfig = `#cloud-config\n${stringify(ud.cloudConfig, { lineWidth: 0 })}`;
  if (ud.files.length === 0) return cloudConfig;
  if (cloudConfig.includes(MIME_BOUNDARY)) throw new Error(`the cloud-config contains the MIME boundary ${MIME_BOUNDARY}`);
  const archive = gzipSync(renderTar(ud.files.map((f) => ({ path: f.path.replace(/^\//, ''), mode: parseInt(f.permissions, 8), content: Buffer.from(f.content) }))), { level: 9 });
  const unpack = guestScript('unpackSeedFiles');
  if (!unpack.endsWith(ARCHIVE_MARKER)) throw new Error(`unpack-seed-files.sh must end with its marker line ${ARCHIVE_MARKER.trim()}`);
  const script = unpack + archive.toString('base64').replace(/.{1,76}/g, '$&\n');
  const part = (type: string, name: string, body: string) =>
    [`--${MIME_BOUNDARY}`, `Content-Type: ${type}; charset="utf-8"`, 'MIME-Version: 1.0', `Content-Disposition: attachment; filename="${name}"`, '', body.endsWith('\n') ? body : `${body}\n`].join('\n');
  return [`Content-Type: multipart/mixed; boundary="${MIME_BOUNDARY}"`, 'MIME-Version: 1.0', '', part('text/cloud-config', 'cloud-config.yaml', cloudConfig) + part('text/x-shellscript', ARCHIVE_PART_NAME, script) + `--${MIME_BOUNDARY}--\n`].join('\n');
}

/** A user-data document's two halves as written: the cloud-config's text and the archive's files. */
export interface UserDataParts {
  cloudConfigText: string;
  files: SeedFile[];
}

/** renderUserDataDocument's inverse, unparsed (pure): the cloud-config as cloud-init reads it, and the archive's files. */
export function readUserDataParts(text: string): UserDataParts {
  if (text.startsWith('#cloud-config\n')) return { cloudConfigText: text, files: [] };
  const parts = text.split(`--${MIME_BOUNDARY}`).slice(1, -1).map((p) => p.slice(p.indexOf('\n\n') + 2));
  const [cc, script] = parts;
  if (parts.length !== 2 || !cc || !script) throw new Error('user-data: expected a cloud-config part and an archive part');
  const data = script.slice(script.indexOf(ARCHIVE_MARKER) + ARCHIVE_MARKER.length);
  const files = readTarBuffer(gunzipSync(Buffer.from(data.replace(/\n/g, ''), 'base64'))).map((e) => ({ path: `/${e.path}`, content: e.content?.toString('utf8') ?? '', permissions: `0${(e.mode & 0o7777).toString(8)}` }));
  return { cloudConfigText: cc, files };
}

/** renderUserDataDocument's inverse (pure): what a rendered seed configures and writes, for review and tests. */
export function parseUserDataDocument(text: string): UserData {
  const { cloudConfigText, files } = readUserDataParts(text);
  return { cloudConfig: parse(cloudConfigText) as UserData['cloudConfig'], files };
}

export function renderMetaData(config: LabConfig, userData: string): string {
  // A new instance id whenever the user-data changes makes cloud-init apply it again.
  return stringify({ 'instance-id': `${config.name}-${sha256(userData).slice(0, 12)}`, 'local-hostname': config.name });
}

export function renderNetworkConfig(): string {
  return stringify({
    version: 2,
    ethernets: { primary: { match: { name: 'en*' }, dhcp4: true, dhcp6: false } },
  });
}

export function renderSeedFiles(config: LabConfig, secrets: SeedSecrets, cluster?: ClusterSeed, opts: SeedOptions = {}): SeedFiles {
  const userData = renderUserData(config, secrets, cluster, opts);
  return { 'user-data': userData, 'meta-data': renderMetaData(config, userData), 'network-config': renderNetworkConfig() };
}
