/** Traefik objects validated against the Kubernetes OpenAPI models, NodePorts pinned to the forwards' guest ports. */
import test from 'ava';
import { Deployment } from 'kubernetes-models/apps/v1';
import { IngressClass } from 'kubernetes-models/networking.k8s.io/v1';
import { ClusterRole, ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { ConfigMap, Namespace, Service, ServiceAccount } from 'kubernetes-models/v1';
import { parse } from 'yaml';
import { renderTraefikObjects } from '../../cloud-init/addons/traefik.ts';

const MODELS: Record<string, new (o: never) => { validate(): void }> = { Namespace, ServiceAccount, ClusterRole, ClusterRoleBinding, IngressClass, ConfigMap, Deployment, Service };
const objects = renderTraefikObjects({ image: 'docker.io/library/traefik:v3.7@sha256:' + '0'.repeat(64), httpNodePort: 30080, httpsNodePort: 30443 });

test('every Traefik object validates against its Kubernetes model', (t) => {
  t.deepEqual(objects.map((o) => o.kind), ['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'IngressClass', 'ConfigMap', 'Deployment', 'Service']);
  for (const o of objects) t.notThrows(() => new MODELS[o.kind]!(o as never).validate(), o.kind);
});

test('the Service is a NodePort on the pinned ports and the default certificate is the wildcard', (t) => {
  const svc = objects.find((o) => o.kind === 'Service') as unknown as { spec: { type: string; ports: { nodePort: number; port: number }[] } };
  t.is(svc.spec.type, 'NodePort');
  t.deepEqual(svc.spec.ports.map((p) => [p.port, p.nodePort]), [[80, 30080], [443, 30443]]);
  const cm = objects.find((o) => o.kind === 'ConfigMap') as unknown as { data: Record<string, string> };
  t.deepEqual(parse(cm.data['tls.yml']!), { tls: { stores: { default: { defaultCertificate: { certFile: '/certs/tls.crt', keyFile: '/certs/tls.key' } } } } });
  // The model validation can fail: a port that is not a number is rejected.
  const bad = { ...svc, spec: { ...svc.spec, ports: [{ name: 'web', port: 'eighty', nodePort: 30080 }] } };
  t.throws(() => new Service(bad as never).validate());
});
