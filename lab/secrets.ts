/**
 * Per-lab secrets, created on the host in the lab's state directory with mode 0600 and never
 * baked into an image: the SSH key the user logs in with, and the lab CA with the
 * certificate the guest serves.
 */
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../core/exec.ts';

export interface SshKeyPair {
  privateKeyPath: string;
  publicKey: string;
}

export async function ensureSshKey(stateDir: string, comment: string, fileName = 'id_ed25519'): Promise<SshKeyPair> {
  const privateKeyPath = join(stateDir, fileName);
  if (!existsSync(privateKeyPath)) {
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', privateKeyPath]);
  }
  await chmod(privateKeyPath, 0o600);
  return { privateKeyPath, publicKey: (await readFile(`${privateKeyPath}.pub`, 'utf8')).trim() };
}

export interface LabCa {
  keyPath: string;
  certPath: string;
  certPem: string;
}

export async function ensureLabCa(stateDir: string, labName: string, files = { key: 'ca.key', cert: 'ca.crt' }): Promise<LabCa> {
  const keyPath = join(stateDir, files.key);
  const certPath = join(stateDir, files.cert);
  if (!existsSync(keyPath) || !existsSync(certPath)) {
    await run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyPath]);
    await chmod(keyPath, 0o600);
    await run('openssl', [
      'req', '-x509', '-new', '-key', keyPath, '-sha256', '-days', '3650',
      '-subj', `/O=labsmith/CN=labsmith ${labName} lab CA`,
      '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:0',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
      '-out', certPath,
    ]);
  }
  await chmod(keyPath, 0o600);
  return { keyPath, certPath, certPem: await readFile(certPath, 'utf8') };
}

export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
}

/** A serverAuth certificate signed by the lab CA. `dnsNames`/`ipAddresses` become its SANs. */
export async function issueServerCertificate(
  ca: LabCa,
  workDir: string,
  name: string,
  sans: { dnsNames: string[]; ipAddresses: string[] },
  days = 90,
): Promise<IssuedCertificate> {
  const key = join(workDir, `${name}.key`);
  const csr = join(workDir, `${name}.csr`);
  const cert = join(workDir, `${name}.crt`);
  const ext = join(workDir, `${name}.ext`);
  const san = [...sans.dnsNames.map((d) => `DNS:${d}`), ...sans.ipAddresses.map((ip) => `IP:${ip}`)].join(',');
  try {
    await run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]);
    await chmod(key, 0o600);
    await run('openssl', ['req', '-new', '-key', key, '-subj', `/CN=${sans.dnsNames[0] ?? name}`, '-addext', `subjectAltName=${san}`, '-out', csr]);
    await writeFile(ext, `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=${san}\n`);
    await run('openssl', [
      'x509', '-req', '-in', csr, '-CA', ca.certPath, '-CAkey', ca.keyPath, '-set_serial', `0x${randomBytes(16).toString('hex')}`,
      '-sha256', '-days', String(days), '-extfile', ext, '-out', cert,
    ]);
    return { certPem: await readFile(cert, 'utf8'), keyPem: await readFile(key, 'utf8') };
  } finally {
    await rm(csr, { force: true });
    await rm(ext, { force: true });
  }
}
