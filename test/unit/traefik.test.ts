/** Traefik objects validated against the Kubernetes OpenAPI models, NodePorts pinned to the forwards' guest ports. */
import test from 'ava';
import { Deployment } from 'kubernetes-models/apps/v1';
import { IngressClass } from 'kubernetes-models/networking.k8s.io/v1';
import { ClusterRole, ClusterRoleBinding, Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { ConfigMap, Namespace, Service, ServiceAccount } from 'kubernetes-models/v1';
import { parse } from 'yaml';
import { renderTraefikObjects } from '../../cloud-init/addons/traefik.ts';

const MODELS: Record<string, new (o: never) => { validate(): void }> = { Namespace, ServiceAccount, ClusterRole, ClusterRoleBinding, Role, RoleBinding, IngressClass, ConfigMap, Deployment, Service };
const objects = renderTraefikObjects({ image: 'docker.io/library/traefik:v3.7@sha256:' + '0'.repeat(64), httpNodePort: 30080, httpsNodePort: 30443, ingressNamespaces: ['default', 'mail'] });

test('every Traefik object validates against its Kubernetes model', (t) => {
  t.deepEqual(objects.map((o) => o.kind), ['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Namespace', 'Role', 'RoleBinding', 'Role', 'RoleBinding', 'IngressClass', 'ConfigMap', 'Deployment', 'Service']);
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

type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };

test('Traefik reads Secrets only in the namespaces it serves, through Roles; its ClusterRole has none', (t) => {
  const clusterRole = objects.find((o) => o.kind === 'ClusterRole') as unknown as { rules: Rule[] };
  t.false(clusterRole.rules.some((r) => r.resources.includes('secrets') || r.resources.includes('*')), 'no cluster-wide Secret access');
  const roles = objects.filter((o) => o.kind === 'Role') as unknown as { metadata: { namespace: string }; rules: Rule[] }[];
  t.deepEqual(roles.map((r) => r.metadata.namespace), ['default', 'mail']);
  for (const role of roles) t.deepEqual(role.rules, [{ apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch'] }]);
  const bindings = objects.filter((o) => o.kind === 'RoleBinding') as unknown as { metadata: { namespace: string }; roleRef: { kind: string; name: string }; subjects: { name: string; namespace: string }[] }[];
  t.deepEqual(bindings.map((b) => [b.metadata.namespace, b.roleRef.kind, b.subjects[0]!.namespace + '/' + b.subjects[0]!.name]), [['default', 'Role', 'traefik/traefik'], ['mail', 'Role', 'traefik/traefik']]);
  // Traefik watches exactly those namespaces, so its Secret informers stay inside what the Roles grant.
  const args = ((objects.find((o) => o.kind === 'Deployment') as any).spec.template.spec.containers[0].args as string[]);
  t.true(args.includes('--providers.kubernetesingress.namespaces=default,mail'), args.join(' '));
  // default exists in every cluster; mail is declared so its Role can be applied.
  t.deepEqual(objects.filter((o) => o.kind === 'Namespace').map((o) => o.metadata.name), ['traefik', 'mail']);
  // The model validation can fail: a RoleBinding without a roleRef is rejected.
  t.throws(() => new RoleBinding({ metadata: { name: 'x', namespace: 'default' }, subjects: [] } as never).validate());
});
