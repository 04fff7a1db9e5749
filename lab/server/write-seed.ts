/**
 * `server:seed`: the real server's NoCloud seed as plain files (for a USB stick or a CIDATA
 * partition) and as an ISO labelled cidata, with its SSH host key made here so the first
 * login pins it (known_hosts beside the seed). Everything owner-only.
 */
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { ConfigError, type ConfigProblem } from '../../core/errors.ts';
import { run } from '../../core/exec.ts';
import { readRegistryMaterial } from '../registries.ts';
import { renderServerClusterSeed, renderServerSeedFiles, serverView } from '../../cloud-init/server-seed.ts';
import { writeSeedFiles, writeSeedIso } from '../../cloud-init/seed-iso.ts';
import type { ClusterSeed, SeedFiles } from '../../cloud-init/user-data.ts';
import type { LabConfig } from '../../config/lab-config.ts';
import { ensureSshKey } from '../secrets.ts';

export const SERVER_SEED_FILES = { dir: 'nocloud', iso: 'seed.iso', hostKey: 'ssh_host_ed25519_key', knownHosts: 'known_hosts', tlsKey: 'placeholder.key', tlsCert: 'placeholder.crt' } as const;

/** authorized_keys lines: every non-comment line of each file (pure). */
export function parseAuthorizedKeys(text: string): string[] {
  return text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#') && /^(ssh-|ecdsa-|sk-)/.test(l.replace(/^[^ ]*=[^ ]* /, '')));
}

export async function readAuthorizedKeyFiles(files: string[], configFile: string): Promise<string[]> {
  const problems: ConfigProblem[] = [];
  const keys: string[] = [];
  for (const [i, file] of files.entries()) {
    const path = resolve(file.replace(/^~(?=\/|$)/, homedir()));
    const text = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
      problems.push({ path: `server.authorizedKeyFiles.${i}`, message: `cannot read ${path} (${e.code}): name an existing public key file` });
      return undefined;
    });
    if (text === undefined) continue;
    const found = parseAuthorizedKeys(text);
    if (found.length === 0) problems.push({ path: `server.authorizedKeyFiles.${i}`, message: `${path} has no SSH public key line (ssh-ed25519 …): is it the .pub file?` });
    keys.push(...found);
  }
  if (files.length === 0) problems.push({ path: 'server.authorizedKeyFiles', message: 'is required: list files with your own SSH public keys' });
  if (problems.length) throw new ConfigError(configFile, problems);
  return keys;
}

export interface WrittenServerSeed {
  dir: string;
  iso: string;
  knownHosts: string;
  files: SeedFiles;
}

export interface ServerClusterInputs {
  kubernetesVersion: string;
  lockedImages: string[];
  upstream: Parameters<typeof renderServerClusterSeed>[1]['upstream'];
}

export async function writeServerSeed(config: LabConfig, outDir: string, opts: { configFile: string; cluster?: ServerClusterInputs; signal?: AbortSignal }): Promise<WrittenServerSeed> {
  const view = serverView(config);
  const authorizedKeys = await readAuthorizedKeyFiles(view.server.authorizedKeyFiles, opts.configFile);
  await mkdir(outDir, { recursive: true, mode: 0o700 });
  await chmod(outDir, 0o700);
  const fqdn = `${view.server.hostname}.${view.server.domain}`;
  const host = await ensureSshKey(outDir, `${fqdn} host key`, SERVER_SEED_FILES.hostKey);
  const keyPath = join(outDir, SERVER_SEED_FILES.tlsKey);
  const certPath = join(outDir, SERVER_SEED_FILES.tlsCert);
  // Only the OS-only placeholder serves it; with a cluster the ingress serves Let's Encrypt's.
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '365', '-subj', `/CN=${fqdn}`, '-addext', `subjectAltName=DNS:${fqdn}`]);
  await chmod(keyPath, 0o600);
  const address = view.server.network.ipv4?.address.split('/')[0];
  const cluster: ClusterSeed | undefined = opts.cluster
    ? renderServerClusterSeed(config, { ...opts.cluster, certSANs: [fqdn, view.server.hostname, ...(address ? [address] : [])] })
    : undefined;
  const files = renderServerSeedFiles(config, {
    authorizedKeys,
    hostKey: { privateKey: await readFile(host.privateKeyPath, 'utf8'), publicKey: host.publicKey },
    placeholderTls: { certPem: await readFile(certPath, 'utf8'), keyPem: await readFile(keyPath, 'utf8') },
    registries: await readRegistryMaterial(config.registries),
  }, cluster);
  const dir = join(outDir, SERVER_SEED_FILES.dir);
  await rm(dir, { recursive: true, force: true });
  await writeSeedFiles(dir, files);
  const iso = join(outDir, SERVER_SEED_FILES.iso);
  await writeSeedIso(dir, iso, opts.signal);
  const [type, key] = host.publicKey.split(/\s+/);
  const names = [fqdn, view.server.hostname, address, view.server.network.ipv6?.address.split('/')[0]].filter(Boolean).join(',');
  const knownHosts = join(outDir, SERVER_SEED_FILES.knownHosts);
  await writeFile(knownHosts, `${names} ${type} ${key}\n`, { mode: 0o600 });
  return { dir, iso, knownHosts, files };
}
