/** cert-manager objects validated against the v1.21.1 CRD schemas (openAPIV3Schema), and a Secret against the Kubernetes models. */
import test from 'ava';
import { Ajv } from 'ajv';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { Secret } from 'kubernetes-models/v1';
import { renderLabCaIssuer, renderLabCaSecret, renderLetsEncryptIssuer, renderWildcardCertificate } from '../../cloud-init/addons/cert-manager.ts';
import { testUnless } from '../helpers.ts';

const CRDS = resolve('..', 'shared', 'upstream', 'cert-manager-v1.21.1-crds');

function validatorFor(file: string) {
  const crd = parse(readFileSync(join(CRDS, file), 'utf8'));
  const version = crd.spec.versions.find((v: { name: string }) => v.name === 'v1');
  // Kubernetes extensions (x-kubernetes-*) and formats like int-or-string are not JSON Schema keywords.
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  const validate = ajv.compile(version.schema.openAPIV3Schema);
  return (obj: unknown) => (validate(obj) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`));
}

const noCrds = existsSync(CRDS) ? undefined : `cert-manager CRDs not found at ${CRDS}`;

testUnless(noCrds, 'lab CA ClusterIssuer and Let\'s Encrypt issuers validate against the ClusterIssuer CRD', (t) => {
  const check = validatorFor('cert-manager.io_clusterissuers.yaml');
  t.deepEqual(check(renderLabCaIssuer()), []);
  t.deepEqual(check(renderLetsEncryptIssuer({ email: 'ops@example.org', server: 'staging', solver: { type: 'http01', ingressClass: 'traefik' } })), []);
  t.deepEqual(check(renderLetsEncryptIssuer({ email: 'ops@example.org', server: 'production', solver: { type: 'dns01-rfc2136', nameserver: '192.0.2.53:53', tsigKeyName: 'acme.', tsigSecretName: 'tsig' } })), []);
  // The validator can fail: a misspelt field is reported.
  t.notDeepEqual(check({ ...renderLabCaIssuer(), spec: { ca: { secretNam: 'x' } } }), []);
});

testUnless(noCrds, 'the wildcard Certificate validates against the Certificate CRD', (t) => {
  const check = validatorFor('cert-manager.io_certificates.yaml');
  const cert = renderWildcardCertificate({ domain: 'lab.example.org', namespace: 'traefik' });
  t.deepEqual(check(cert), []);
  t.deepEqual((cert.spec as { dnsNames: string[] }).dnsNames, ['*.lab.example.org', 'lab.example.org']);
  t.notDeepEqual(check({ ...cert, spec: { ...(cert.spec as object), privateKey: { algorithm: 'DSA' } } }), []);
});

test('the CA secret is a valid kubernetes.io/tls Secret in cert-manager\'s namespace', (t) => {
  const secret = renderLabCaSecret({ certPem: 'CERT', keyPem: 'KEY' });
  t.notThrows(() => new Secret(secret as never).validate());
  t.is(secret.metadata.namespace, 'cert-manager');
});
