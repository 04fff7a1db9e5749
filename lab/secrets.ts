/**
 * Per-lab secrets, created on the host in the lab's state directory with mode 0600 and never
 * baked into an image: the SSH key the user logs in with, and the lab CA with the
 * certificate the guest serves.
 */
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import { isIP, isIPv6 } from 'node:net';
import { join } from 'node:path';
import type { LabConfig } from '../config/lab-config.ts';
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

/**
 * What the lab CA may sign: names under the lab domain (the wildcard certificate cert-manager
 * issues for *.<ingressDomain> and the domain itself) and the names and addresses the lab
 * serves itself (the placeholder ingress's certificate). Anything else it signed would not verify.
 */
export interface LabCaScope {
  labName: string;
  ingressDomain: string;
  dnsNames: string[];
  ipAddresses: string[];
}

/**
 * A lab lives from lab:up to lab:down (hours for a test run, a day between nightly rebuilds,
 * weeks for a replica kept up); a new lab gets a new CA. One year covers the longest of those
 * with room for four renewals of the 90-day wildcard certificate, a tenth of the ten years the CA
 * had before, and bounds how long a copy of its key (it is in the seed and the cluster) is of use.
 */
export const LAB_CA_DAYS = 365;

/** The names and addresses the placeholder ingress's certificate carries (and the CA may sign). */
export function placeholderCertificateSans(config: Pick<LabConfig, 'network'>, tlsName: string): { dnsNames: string[]; ipAddresses: string[] } {
  return { dnsNames: [tlsName], ipAddresses: [...new Set(['127.0.0.1', config.network.hostAddress].filter((a) => a !== '0.0.0.0' && a !== '::'))] };
}

export function labCaScope(config: Pick<LabConfig, 'name' | 'network' | 'addons'>, placeholderTlsName: string): LabCaScope {
  return { labName: config.name, ingressDomain: config.addons.ingressDomain, ...placeholderCertificateSans(config, placeholderTlsName) };
}

/** openssl's nameConstraints extension value for the scope (pure). */
export function renderNameConstraints(scope: LabCaScope): string {
  const dns = [
    // ".d" is every name under d in every verifier; "d" also admits the apex, which the wildcard certificate names too.
    `.${scope.ingressDomain}`,
    scope.ingressDomain,
    ...scope.dnsNames.filter((n) => n !== scope.ingressDomain && !n.endsWith(`.${scope.ingressDomain}`)),
  ];
  const ips = scope.ipAddresses.map((ip) => (isIPv6(ip) ? `${ip}/ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff` : `${ip}/255.255.255.255`));
  for (const v of [...dns, ...scope.ipAddresses]) {
    if (!v || /[,\s;]/.test(v)) throw new Error(`lab CA name constraint ${JSON.stringify(v)}: a name or address cannot hold commas, semicolons or spaces`);
  }
  for (const ip of scope.ipAddresses) if (!isIP(ip)) throw new Error(`lab CA name constraint: ${ip} is not an IP address`);
  return ['critical', ...[...new Set(dns)].map((d) => `permitted;DNS:${d}`), ...ips.map((ip) => `permitted;IP:${ip}`)].join(',');
}

/**
 * The lab's CA, created once per lab directory: EC P-256, path length 0, name-constrained to the
 * scope, valid LAB_CA_DAYS. Given only the lab's name (the older call), the CA has no name
 * constraints: pass the scope (labCaScope) so it has them.
 */
export async function ensureLabCa(stateDir: string, scope: LabCaScope | string, files = { key: 'ca.key', cert: 'ca.crt' }): Promise<LabCa> {
  const keyPath = join(stateDir, files.key);
  const certPath = join(stateDir, files.cert);
  const labName = typeof scope === 'string' ? scope : scope.labName;
  if (!existsSync(keyPath) || !existsSync(certPath)) {
    await run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyPath]);
    await chmod(keyPath, 0o600);
    await run('openssl', [
      'req', '-x509', '-new', '-key', keyPath, '-sha256', '-days', String(LAB_CA_DAYS),
      '-subj', `/O=labsmith/CN=labsmith ${labName} lab CA`,
      '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:0',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
      ...(typeof scope === 'string' ? [] : ['-addext', `nameConstraints=${renderNameConstraints(scope)}`]),
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
