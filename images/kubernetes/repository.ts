/**
 * The Kubernetes apt repository (pkgs.k8s.io): one flat repository per minor, signed by a key
 * pinned here by fingerprint. Reading it verifies InRelease with gpgv against that key and the
 * Packages index against InRelease, so nothing unsigned reaches the lock.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { LabError } from '../../core/errors.ts';
import { fetchBytes, type FetchOptions } from '../../core/download.ts';
import { run } from '../../core/exec.ts';
import { sha256 } from '../../core/hash.ts';
import { clearsignedBody, parsePackagesIndex, parseReleaseSha256, type RepoPackage } from './apt-index.ts';

/** pkgs.k8s.io's signing key ("isv:kubernetes OBS Project"), the same for every minor. */
export const KUBERNETES_KEY_FINGERPRINT = 'DE15B14486CD377B9E876E1A234654DA9A296436';

export const KUBERNETES_PACKAGES = ['kubelet', 'kubeadm', 'kubectl', 'cri-tools', 'kubernetes-cni'] as const;
/** Packages versioned with Kubernetes itself (the others have their own numbering). */
export const SAME_MINOR_PACKAGES = ['kubelet', 'kubeadm', 'kubectl'] as const;

export function kubernetesRepository(minor: string): string {
  return `https://pkgs.k8s.io/core:/stable:/v${minor}/deb/`;
}

export function releaseKeyUrl(repository: string): string {
  return new URL('Release.key', repository).href;
}

/** Fingerprints of the primary keys in an OpenPGP key file (armored or binary). */
export async function keyFingerprints(keyFile: string): Promise<string[]> {
  const home = await mkdtemp(join(tmpdir(), 'labsmith-gpg-'));
  try {
    const { stdout } = await run('gpg', ['--homedir', home, '--batch', '--with-colons', '--show-keys', keyFile]);
    const lines = stdout.split('\n');
    const out: string[] = [];
    // The fpr line right after each pub line is the primary key's.
    lines.forEach((line, i) => {
      if (line.startsWith('pub:') && lines[i + 1]?.startsWith('fpr:')) out.push(lines[i + 1]!.split(':')[9]!);
    });
    return out;
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

/** Checks the key file holds exactly the pinned key and writes it as a binary keyring for gpgv and apt. */
export async function pinnedKeyring(keyFile: string, fingerprint: string, keyringOut: string): Promise<void> {
  const found = await keyFingerprints(keyFile);
  if (found.length !== 1 || found[0] !== fingerprint) {
    throw new LabError(
      `${keyFile} holds key ${found.join(', ') || '(none)'}, not the pinned ${fingerprint}`,
      'the repository signing key changed: verify the new key out of band before changing KUBERNETES_KEY_FINGERPRINT in images/kubernetes/repository.ts',
    );
  }
  await run('gpg', ['--batch', '--yes', '--output', keyringOut, '--dearmor', keyFile]);
}

/** gpgv on a clearsigned file; returns the primary key fingerprint of a good signature. */
export async function verifyClearsigned(file: string, keyring: string): Promise<string | undefined> {
  const result = await run('gpgv', ['--status-fd', '1', '--keyring', keyring, file], { allowFailure: true });
  // VALIDSIG <sig fpr> <date> <ts> <expire> <ver> <res> <pk algo> <hash algo> <class> <primary fpr>
  const valid = /^\[GNUPG:\] VALIDSIG (\S+)(?: \S+){8} (\S+)/m.exec(result.stdout);
  return result.exitCode === 0 && valid ? valid[2] : undefined;
}

export interface SignedRepository {
  repository: string;
  inReleaseSha256: string;
  packages: RepoPackage[];
}

/** Reads a flat apt repository (`deb URL /`): InRelease signed by the pinned key, then its Packages index. */
export async function readSignedRepository(repository: string, keyring: string, fingerprint: string, opts: FetchOptions = {}): Promise<SignedRepository> {
  const inReleaseUrl = new URL('InRelease', repository).href;
  const inRelease = await fetchBytes(inReleaseUrl, opts);
  const dir = await mkdtemp(join(tmpdir(), 'labsmith-inrelease-'));
  try {
    await writeFile(join(dir, 'InRelease'), inRelease);
    const signer = await verifyClearsigned(join(dir, 'InRelease'), keyring);
    if (signer !== fingerprint) {
      throw new LabError(
        `${inReleaseUrl} is not signed by the pinned key ${fingerprint}${signer ? ` (signed by ${signer})` : ''}`,
        'do not use this repository until the signature is explained; a mirror or proxy may be altering it',
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const listed = parseReleaseSha256(clearsignedBody(inRelease.toString('utf8')));
  const name = ['Packages', 'Packages.gz'].find((n) => listed[n]);
  if (!name) throw new LabError(`${inReleaseUrl} lists no Packages index`, 'is this a flat apt repository (deb URL /)?');
  const raw = await fetchBytes(new URL(name, repository).href, opts);
  if (sha256(raw) !== listed[name]!.sha256) {
    throw new LabError(`${new URL(name, repository).href} does not match the sha256 its InRelease lists`, 'the repository is being updated or altered; try again later');
  }
  const text = (name.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8');
  return { repository, inReleaseSha256: sha256(inRelease), packages: parsePackagesIndex(text) };
}
