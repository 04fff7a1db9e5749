/**
 * Cluster add-on renderers (groundwork for the Kubernetes layer): golden kubeadm config,
 * the Calico patch applied to the real upstream manifest, and the egress NetworkPolicies
 * validated against the Kubernetes OpenAPI models.
 */
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { sha256 } from '../../core/hash.ts';
import { CALICO, patchCalicoManifest, PRODUCTION_CALICO } from '../../cloud-init/addons/calico.ts';
import { ACCEPTANCE_INGRESS_NAMESPACE, ingressNamespaces, renderAddonManifests } from '../../cloud-init/addons/bundle.ts';
import { renderKubeadmConfig } from '../../cloud-init/addons/kubeadm-config.ts';
import { renderEgressPolicies } from '../../cloud-init/addons/network-policies.ts';
import { parseLabConfig } from '../../config/load.ts';
import { NEUTRAL_HOST, testUnless } from '../helpers.ts';

const config = (() => {
  const r = parseLabConfig('name: mail\nkubernetes: { dnsDomain: cluster.example }\n', NEUTRAL_HOST, '/s');
  if (!r.ok) throw new Error('fixture');
  return r.config;
})();

test('kubeadm config: v1beta4, the configured networks and domain, containerd, untainted (golden)', (t) => {
  const text = renderKubeadmConfig(config, { kubernetesVersion: 'v1.37.0', advertiseAddress: '10.0.2.15', certSANs: ['127.0.0.1', 'mail'] });
  t.is(
    text,
    `apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: 10.0.2.15
  bindPort: 6443
nodeRegistration:
  name: mail
  criSocket: unix:///run/containerd/containerd.sock
  taints: []
  kubeletExtraArgs:
    - name: node-ip
      value: 10.0.2.15
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.37.0
clusterName: mail
networking:
  dnsDomain: cluster.example
  podSubnet: 10.42.0.0/16
  serviceSubnet: 10.96.0.0/12
apiServer:
  certSANs:
    - 127.0.0.1
    - mail
controllerManager:
  extraArgs:
    - name: allocate-node-cidrs
      value: "true"
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
failSwapOn: true
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
`,
  );
});

const UPSTREAM = resolve('..', 'shared', 'upstream', 'calico-v3.32.1.yaml');

testUnless(existsSync(UPSTREAM) ? undefined : `upstream manifest not found at ${UPSTREAM}`, 'Calico patch on the real upstream manifest: CIDR, IPIP Never, MTU 1500, nothing else changed', (t) => {
  const upstream = readFileSync(UPSTREAM, 'utf8');
  t.is(sha256(upstream), CALICO.sha256, 'the reference copy is the pinned file');
  const patched = patchCalicoManifest(upstream, { podSubnet: '10.42.0.0/16', ...PRODUCTION_CALICO });
  const before = parseAllDocuments(upstream).map((d) => d.toJSON());
  const after = parseAllDocuments(patched).map((d) => d.toJSON());
  t.is(after.length, before.length);
  const changed = after.map((doc, i) => (JSON.stringify(doc) === JSON.stringify(before[i]) ? undefined : `${doc?.kind}/${doc?.metadata?.name}`)).filter(Boolean);
  t.deepEqual(changed, ['ConfigMap/calico-config', 'DaemonSet/calico-node']);
  const cm = after.find((d) => d?.kind === 'ConfigMap' && d.metadata.name === 'calico-config');
  t.is(cm.data.veth_mtu, '1500');
  const node = after.find((d) => d?.kind === 'DaemonSet' && d.metadata.name === 'calico-node');
  const env = Object.fromEntries(node.spec.template.spec.containers.find((c: { name: string }) => c.name === 'calico-node').env.map((e: { name: string; value?: string }) => [e.name, e.value]));
  t.is(env.CALICO_IPV4POOL_CIDR, '10.42.0.0/16');
  t.is(env.CALICO_IPV4POOL_IPIP, 'Never');
  t.is(env.CALICO_IPV4POOL_VXLAN, 'Never');
});

test('Calico patch fails loudly when upstream changed shape', (t) => {
  const noNode = 'kind: ConfigMap\nmetadata: { name: calico-config }\ndata: { veth_mtu: "0" }\n';
  t.throws(() => patchCalicoManifest(noNode, { podSubnet: '10.42.0.0/16', ...PRODUCTION_CALICO }), { message: /no DaemonSet calico-node: upstream changed shape/ });
  const noIpip = `${noNode}---\nkind: DaemonSet\nmetadata: { name: calico-node }\nspec: { template: { spec: { containers: [ { name: calico-node, env: [ { name: CALICO_IPV4POOL_VXLAN, value: Never } ] } ] } } }\n`;
  t.throws(() => patchCalicoManifest(noIpip, { podSubnet: '10.42.0.0/16', ...PRODUCTION_CALICO }), { message: /no CALICO_IPV4POOL_IPIP/ });
});

test('egress policies match the production server and validate against the Kubernetes models', (t) => {
  const policies = renderEgressPolicies('mail', { defaultDeny: true });
  t.deepEqual(policies.map((p) => p.metadata.name), ['egress-dns', 'egress-https', 'default-deny-egress']);
  for (const p of policies) t.notThrows(() => new NetworkPolicy(p as never).validate(), p.metadata.name);
  const https = policies[1]!.spec as { egress: { to: { ipBlock: { cidr: string; except: string[] } }[]; ports: unknown[] }[] };
  t.deepEqual(https.egress[0]!.to[0]!.ipBlock, { cidr: '0.0.0.0/0', except: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'] });
  t.deepEqual(https.egress[0]!.ports, [{ protocol: 'TCP', port: 443 }]);
  // The validator can fail: a wrong protocol is rejected.
  const broken = { ...policies[0]!, spec: { ...policies[0]!.spec, egress: [{ ports: [{ protocol: 'ICMP', port: 53 }] }] } };
  t.throws(() => new NetworkPolicy(broken as never).validate());
  t.is(parse(JSON.stringify(policies[0])).metadata.namespace, 'mail');
});

test('the kubeconfig names the forwarded API port; SANs cover it', async (t) => {
  const { rewriteKubeconfigServer, apiServerSans } = await import('../../cloud-init/addons/kubeconfig.ts');
  const admin = 'apiVersion: v1\nkind: Config\nclusters:\n  - name: mail\n    cluster:\n      certificate-authority-data: QUJD\n      server: https://10.0.2.15:6443\nusers: []\n';
  const out = parse(rewriteKubeconfigServer(admin, 'https://127.0.0.1:6443'));
  t.is(out.clusters[0].cluster.server, 'https://127.0.0.1:6443');
  t.is(out.clusters[0].cluster['certificate-authority-data'], 'QUJD');
  t.throws(() => rewriteKubeconfigServer('apiVersion: v1\nkind: Config\n', 'https://x'), { message: /no clusters/ });
  t.deepEqual(apiServerSans('mail', '192.0.2.2'), ['127.0.0.1', 'localhost', 'mail', '192.0.2.2']);
  t.deepEqual(apiServerSans('mail', '0.0.0.0'), ['127.0.0.1', 'localhost', 'mail']);
});

test("the add-on bundle gives Traefik the app namespaces and the suite's, and Secret access only there", (t) => {
  const traefik = renderAddonManifests(config, {}).find((a) => a.file === '50-traefik.yaml')!;
  const docs = parseAllDocuments(traefik.text).map((d) => d.toJSON() as { kind: string; metadata: { name: string; namespace?: string } });
  t.deepEqual(ingressNamespaces(config), ['default', ACCEPTANCE_INGRESS_NAMESPACE]);
  t.deepEqual(docs.filter((d) => d.kind === 'Role').map((d) => d.metadata.namespace).sort(), ['default', ACCEPTANCE_INGRESS_NAMESPACE].sort());
  t.true(docs.some((d) => d.kind === 'Namespace' && d.metadata.name === ACCEPTANCE_INGRESS_NAMESPACE), 'the suite namespace exists before its Role is applied');
  t.regex(traefik.text, new RegExp(`--providers.kubernetesingress.namespaces=default,${ACCEPTANCE_INGRESS_NAMESPACE}`));
  t.notRegex(traefik.text.split('kind: ClusterRoleBinding')[0]!.split('kind: ClusterRole')[1]!, /secrets/, 'the ClusterRole names no Secrets');
});
