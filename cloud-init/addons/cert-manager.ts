/**
 * TLS for the lab (pure): the lab CA as a cert-manager CA ClusterIssuer (its key comes from
 * the host per lab, never from the image), a wildcard Certificate for the lab domain that
 * the ingress serves by default, and an optional Let's Encrypt ClusterIssuer (HTTP-01 or
 * DNS-01 over RFC 2136, for a self-hosted DNS server) for the server profile.
 */

import { MANAGED_BY, type K8sObject } from './k8s-object.ts';

export const CERT_MANAGER = {
  version: 'v1.21.1',
  url: 'https://github.com/cert-manager/cert-manager/releases/download/v1.21.1/cert-manager.yaml',
  namespace: 'cert-manager',
} as const;

export const LAB_CA_ISSUER = 'labsmith-lab-ca';
export const WILDCARD_SECRET = 'lab-wildcard-tls';
export const WILDCARD_CERTIFICATE = 'lab-wildcard';

const labels = { ...MANAGED_BY };

/** The CA key pair as a Secret in cert-manager's namespace (rendered at lab:up, never into the image). */
export function renderLabCaSecret(ca: { certPem: string; keyPem: string }): K8sObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: LAB_CA_ISSUER, namespace: CERT_MANAGER.namespace, labels },
    type: 'kubernetes.io/tls',
    stringData: { 'tls.crt': ca.certPem, 'tls.key': ca.keyPem },
  };
}

export function renderLabCaIssuer(): K8sObject {
  return { apiVersion: 'cert-manager.io/v1', kind: 'ClusterIssuer', metadata: { name: LAB_CA_ISSUER, labels }, spec: { ca: { secretName: LAB_CA_ISSUER } } };
}

export function renderWildcardCertificate(opts: { domain: string; namespace: string; issuer?: string }): K8sObject {
  return {
    apiVersion: 'cert-manager.io/v1',
    kind: 'Certificate',
    metadata: { name: WILDCARD_CERTIFICATE, namespace: opts.namespace, labels },
    spec: {
      secretName: WILDCARD_SECRET,
      commonName: `*.${opts.domain}`,
      dnsNames: [`*.${opts.domain}`, opts.domain],
      usages: ['server auth', 'digital signature', 'key encipherment'],
      privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
      duration: '2160h',
      renewBefore: '360h',
      issuerRef: { name: opts.issuer ?? LAB_CA_ISSUER, kind: 'ClusterIssuer', group: 'cert-manager.io' },
    },
  };
}

export type AcmeSolver = { type: 'http01'; ingressClass: string } | { type: 'dns01-rfc2136'; nameserver: string; tsigKeyName: string; tsigSecretName: string; tsigAlgorithm?: string };

export const LETS_ENCRYPT = {
  production: 'https://acme-v02.api.letsencrypt.org/directory',
  staging: 'https://acme-staging-v02.api.letsencrypt.org/directory',
} as const;

export function renderLetsEncryptIssuer(opts: { email: string; server: keyof typeof LETS_ENCRYPT; solver: AcmeSolver }): K8sObject {
  const solver =
    opts.solver.type === 'http01'
      ? { http01: { ingress: { ingressClassName: opts.solver.ingressClass } } }
      : {
          dns01: {
            rfc2136: {
              nameserver: opts.solver.nameserver,
              tsigKeyName: opts.solver.tsigKeyName,
              tsigAlgorithm: opts.solver.tsigAlgorithm ?? 'HMACSHA256',
              tsigSecretSecretRef: { name: opts.solver.tsigSecretName, key: 'tsig-secret' },
            },
          },
        };
  return {
    apiVersion: 'cert-manager.io/v1',
    kind: 'ClusterIssuer',
    metadata: { name: `letsencrypt-${opts.server}`, labels },
    spec: { acme: { email: opts.email, server: LETS_ENCRYPT[opts.server], privateKeySecretRef: { name: `letsencrypt-${opts.server}-account` }, solvers: [solver] } },
  };
}
