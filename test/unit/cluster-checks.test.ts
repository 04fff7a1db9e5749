/**
 * The acceptance suite's Kubernetes side without a cluster: verdicts on recorded API objects
 * shaped like a kubeadm cluster's, the API client over real mutual TLS on loopback, the suite's
 * objects against the Kubernetes models, probe output parsing, the TLS match on real
 * certificates, and the whole suite on a lab with no cluster.
 */
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Ingress, NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { Namespace, PersistentVolumeClaim, Pod, Service } from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';
import { ACCEPTANCE_INGRESS_NAMESPACE, renderAddonManifests } from '../../cloud-init/addons/bundle.ts';
import { parseLabConfig } from '../../config/load.ts';
import { run } from '../../core/exec.ts';
import { runCheck } from '../../lab/acceptance/check.ts';
import { CLUSTER_READY_CHECKS } from '../../lab/acceptance/checks/health.ts';
import { tlsMatches } from '../../lab/acceptance/checks/tls.ts';
import { classifyConnect, echoPodsPath, echoRef, parseNslookup, renderClaim, renderEchoObjects, suiteNamespaces, renderNamespace, renderProbePod, renderSuitePolicies, connectCommand, AGNHOST_IMAGE } from '../../lab/acceptance/cluster/objects.ts';
import { OS_ONLY_REASON, type AcceptanceContext } from '../../lab/acceptance/context.ts';
import { CLUSTER_CHECKS, runAcceptanceSuite, suiteChecks } from '../../lab/acceptance/suite.ts';
import { parseTap } from '../../lab/acceptance/report.ts';
import { KubeApiError, KubeClient, resourcePath } from '../../lab/kube/client.ts';
import { loadKubeconfig, parseKubeconfig } from '../../lab/kube/kubeconfig.ts';
import { certificateVerdict, nodeVerdict, podsVerdict } from '../../lab/kube/readiness.ts';
import { ensureLabCa, issueServerCertificate } from '../../lab/secrets.ts';
import { missingCommand, NEUTRAL_HOST, testUnless, withTempDir } from '../helpers.ts';

const fixture = async (name: string) => JSON.parse(await readFile(join('test/fixtures/k8s', name), 'utf8'));

test('node verdicts: Ready and schedulable, a CNI not ready yet, the control-plane taint left on', async (t) => {
  const ready = nodeVerdict([await fixture('node-ready.json')]);
  t.true(ready.ok);
  t.is(ready.detail, 'mail Ready and schedulable (kubelet v1.37.2, containerd://1.7.24)');
  const cni = nodeVerdict([await fixture('node-not-ready-cni.json')]);
  t.false(cni.ok);
  t.regex(cni.detail, /mail not Ready \(KubeletNotReady: container runtime network not ready.*cni plugin not initialized\)/);
  t.regex(cni.detail, /taints node\.kubernetes\.io\/not-ready:NoSchedule/);
  const tainted = nodeVerdict([await fixture('node-control-plane-taint.json')]);
  t.false(tainted.ok);
  t.is(tainted.detail, 'mail has taints node-role.kubernetes.io/control-plane:NoSchedule');
  t.deepEqual(nodeVerdict([]), { ok: false, detail: 'no nodes registered' });
});

test('pod verdicts name each pod that is not Ready and why; finished job pods do not count', async (t) => {
  const pods = (await fixture('pods-kube-system-starting.json')).items;
  const v = podsVerdict(pods, 'kube-system');
  t.false(v.ok);
  t.regex(v.detail, /^3\/6 pods in kube-system not Ready: /);
  t.regex(v.detail, /kube-system\/coredns-7c65d6cfc9-q8w4n ContainerCreating/);
  t.regex(v.detail, /calico-kube-controllers-6b7b9c4f5d-2lqzj ErrImageNeverPull: Container image "quay\.io\/calico\/kube-controllers:v3\.32\.1" is not present/);
  t.regex(v.detail, /local-path-provisioner-5cf85fd84d-x7v9d Unschedulable: 0\/1 nodes are available/);
  t.notRegex(v.detail, /etcd-mail|calico-node|upgrade-job/);
  t.true(podsVerdict(pods.filter((p: { metadata: { name: string } }) => /^(etcd|calico-node|upgrade)/.test(p.metadata.name)), 'kube-system').ok);
});

test('certificate verdicts: Ready for the current generation only', async (t) => {
  t.deepEqual(certificateVerdict(await fixture('certificate-ready.json')), { ok: true, detail: 'traefik/lab-wildcard Ready (generation 1), notAfter 2027-02-24T15:06:30Z' });
  const stale = certificateVerdict(await fixture('certificate-stale.json'));
  t.false(stale.ok);
  t.is(stale.detail, 'traefik/lab-wildcard Ready is for generation 1, the spec is generation 2');
  const issuing = certificateVerdict(await fixture('certificate-issuing.json'));
  t.is(issuing.detail, 'traefik/lab-wildcard not Ready: DoesNotExist (Issuing certificate as Secret does not exist)');
});

test('API paths for core, grouped, namespaced and cluster-scoped kinds', (t) => {
  t.is(resourcePath('v1', 'Pod', 'kube-system', 'etcd-mail'), '/api/v1/namespaces/kube-system/pods/etcd-mail');
  t.is(resourcePath('v1', 'Node', 'ignored', 'mail'), '/api/v1/nodes/mail');
  t.is(resourcePath('networking.k8s.io/v1', 'NetworkPolicy', 'ns'), '/apis/networking.k8s.io/v1/namespaces/ns/networkpolicies');
  t.is(resourcePath('networking.k8s.io/v1', 'Ingress', 'ns', 'echo'), '/apis/networking.k8s.io/v1/namespaces/ns/ingresses/echo');
  t.is(resourcePath('cert-manager.io/v1', 'ClusterIssuer', undefined, 'labsmith-lab-ca'), '/apis/cert-manager.io/v1/clusterissuers/labsmith-lab-ca');
});

/** A CA, an API server certificate for 127.0.0.1, and a client certificate, like kubeadm's admin.conf carries. */
async function apiServerPki(dir: string) {
  const ca = await ensureLabCa(dir, 'kubernetes');
  const server = await issueServerCertificate(ca, dir, 'apiserver', { dnsNames: ['kubernetes'], ipAddresses: ['127.0.0.1'] });
  await run('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'admin.key'), '-subj', '/O=kubeadm:cluster-admins/CN=kubernetes-admin', '-out', join(dir, 'admin.csr')]);
  await import('node:fs/promises').then((fs) => fs.writeFile(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n'));
  await run('openssl', ['x509', '-req', '-in', join(dir, 'admin.csr'), '-CA', ca.certPath, '-CAkey', ca.keyPath, '-set_serial', '9', '-days', '1', '-extfile', join(dir, 'client.ext'), '-out', join(dir, 'admin.crt')]);
  return { ca, server, clientCert: await readFile(join(dir, 'admin.crt'), 'utf8'), clientKey: await readFile(join(dir, 'admin.key'), 'utf8') };
}

function kubeconfigText(server: string, ca: string, cert: string, key: string): string {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return `apiVersion: v1
kind: Config
current-context: kubernetes-admin@mail
clusters:
- name: mail
  cluster: { server: ${server}, certificate-authority-data: ${b64(ca)} }
contexts:
- name: kubernetes-admin@mail
  context: { cluster: mail, user: kubernetes-admin }
users:
- name: kubernetes-admin
  user: { client-certificate-data: ${b64(cert)}, client-key-data: ${b64(key)} }
`;
}

testUnless(missingCommand('openssl'), 'the API client verifies the server, presents the kubeconfig client certificate, and reads, applies and deletes', async (t) => {
  await withTempDir(async (dir) => {
    const pki = await apiServerPki(dir);
    const seen: { method: string; url: string; type?: string; user?: string; body: string }[] = [];
    const srv = createServer({ cert: pki.server.certPem, key: pki.server.keyPem, ca: pki.ca.certPem, requestCert: true, rejectUnauthorized: true }, (req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', async () => {
        const peer = (req.socket as import('node:tls').TLSSocket).getPeerCertificate();
        seen.push({ method: req.method!, url: req.url!, type: req.headers['content-type'], user: String(peer.subject?.CN), body });
        res.setHeader('content-type', 'application/json');
        if (req.url === '/api/v1/nodes') return res.end(JSON.stringify({ kind: 'NodeList', items: [await fixture('node-ready.json')] }));
        if (req.method === 'DELETE' && req.url!.endsWith('/gone')) return res.writeHead(404).end(JSON.stringify({ kind: 'Status', reason: 'NotFound', message: 'pods "gone" not found' }));
        if (req.url!.startsWith('/api/v1/namespaces/secret')) return res.writeHead(403).end(JSON.stringify({ kind: 'Status', reason: 'Forbidden', message: 'secrets is forbidden: User "x" cannot get resource' }));
        res.end(body || '{}');
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const server = `https://127.0.0.1:${(srv.address() as AddressInfo).port}`;
    try {
      const file = join(dir, 'admin.conf');
      await import('node:fs/promises').then((fs) => fs.writeFile(file, kubeconfigText(server, pki.ca.certPem, pki.clientCert, pki.clientKey)));
      const kube = new KubeClient(await loadKubeconfig(file));
      t.true(nodeVerdict(await kube.list('/api/v1/nodes')).ok);
      t.is(seen[0]!.user, 'kubernetes-admin', 'the client certificate was presented');
      const pod = renderProbePod({ name: 'p', namespace: 'ns', image: AGNHOST_IMAGE, command: connectCommand('10.0.0.1', 443) });
      await kube.apply(pod);
      const patch = seen.at(-1)!;
      t.is(patch.method, 'PATCH');
      t.is(patch.url, '/api/v1/namespaces/ns/pods/p?fieldManager=labsmith-e2e&force=true');
      t.is(patch.type, 'application/apply-patch+yaml');
      await t.notThrowsAsync(kube.delete('/api/v1/namespaces/ns/pods/gone'), 'deleting what is gone is fine');
      const denied = await t.throwsAsync(kube.get('/api/v1/namespaces/secret/secrets/x'));
      t.true(denied instanceof KubeApiError);
      t.regex(denied!.message, /403 Forbidden: secrets is forbidden/);

      // A server the kubeconfig's CA did not sign is refused.
      const other = await ensureLabCa(dir, 'other', { key: 'o.key', cert: 'o.crt' });
      const impostor = new KubeClient({ server, ca: other.certPem, cert: pki.clientCert, key: pki.clientKey });
      await t.throwsAsync(impostor.list('/api/v1/nodes'), { message: /self.signed|unable to verify|certificate/i });
    } finally {
      srv.close();
    }
  });
});

test('kubeconfig: the current context picks cluster and user; insecure clusters and missing contexts are refused by name', (t) => {
  const text = kubeconfigText('https://127.0.0.1:6443/', 'CA', 'CERT', 'KEY');
  const k = parseKubeconfig(text, 'admin.conf');
  t.is(k.server, 'https://127.0.0.1:6443');
  t.is(k.ca, 'CA');
  t.is(k.cert, 'CERT');
  t.throws(() => parseKubeconfig(text, 'admin.conf', 'nope'), { message: /admin\.conf: no context nope/ });
  t.throws(() => parseKubeconfig(text.replace('certificate-authority-data', 'insecure-skip-tls-verify: true, x'), 'admin.conf'), { message: /insecure-skip-tls-verify/ });
});

test('the suite objects validate against the Kubernetes models; probes use baked images and never pull', (t) => {
  const models: Record<string, new (o: never) => { validate(): void }> = { Namespace, Deployment, Service, Ingress, NetworkPolicy, Pod, PersistentVolumeClaim };
  const objects = [
    renderNamespace('labsmith-e2e-abc123'),
    ...renderEchoObjects(echoRef('abc123'), 'echo-abc123.mail.test'),
    ...renderSuitePolicies('labsmith-e2e-abc123-egress'),
    renderProbePod({ name: 'p', namespace: 'n', labels: { 'egress-dns': 'true' }, image: AGNHOST_IMAGE, command: connectCommand('198.51.100.10', 443) }),
    renderProbePod({ name: 'w', namespace: 'n', image: 'busybox', command: ['true'], volumes: [{ name: 'data', claim: 'c', mountPath: '/data' }] }),
    renderClaim('n', 'c'),
  ];
  for (const o of objects) t.notThrows(() => new models[o.kind]!(o as never).validate(), `${o.kind}/${o.metadata.name}`);
  t.deepEqual(renderSuitePolicies('x').map((p) => p.metadata.name), ['egress-dns', 'egress-https', 'default-deny-egress']);
  const containers = JSON.stringify(objects).match(/"imagePullPolicy":"[^"]+"/g) ?? [];
  t.true(containers.length >= 3 && containers.every((c) => c.includes('Never')));
});

test("the echo backend goes into the suite's ingress namespace under run-suffixed names, selecting only its own run's pods", (t) => {
  const [deployment, service, ingress] = renderEchoObjects(echoRef('abc123'), 'echo-abc123.mail.test') as unknown as [Deployment, Service, Ingress];
  t.deepEqual([deployment, service, ingress].map((o) => `${o.kind} ${o.metadata!.namespace}/${o.metadata!.name}`), ['Deployment labsmith-e2e/echo-abc123', 'Service labsmith-e2e/echo-abc123', 'Ingress labsmith-e2e/echo-abc123']);
  t.is(suiteNamespaces('abc123').ingress, ACCEPTANCE_INGRESS_NAMESPACE);
  const selector = deployment.spec!.selector.matchLabels!;
  t.is(selector['app.kubernetes.io/instance'], 'echo-abc123');
  t.deepEqual(service.spec!.selector, selector, 'the Service selects the same pods as the Deployment');
  t.like(deployment.spec!.template.metadata!.labels, selector);
  t.is(ingress.spec!.rules![0]!.http!.paths[0]!.backend.service!.name, 'echo-abc123');
  // Two runs share the namespace: neither's selector matches the other's pods, nor do their names collide.
  const other = renderEchoObjects(echoRef('ffee00'), 'echo-ffee00.mail.test')[0] as unknown as Deployment;
  t.notDeepEqual(other.spec!.selector.matchLabels, selector);
  t.notRegex(echoPodsPath(echoRef('abc123')), /ffee00/);
  t.is(echoPodsPath(echoRef('abc123')), '/api/v1/namespaces/labsmith-e2e/pods?labelSelector=app%3Decho%2Capp.kubernetes.io%2Finstance%3Decho-abc123');
});

test("the namespace the suite puts its Ingress in is one Traefik watches, and the add-on bundle (not the suite) makes it", (t) => {
  const r = parseLabConfig('name: mail\n', NEUTRAL_HOST, '/s');
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  const traefik = renderAddonManifests(r.config, {}).find((a) => a.file === '50-traefik.yaml')!;
  const docs = parseAllDocuments(traefik.text).map((d) => d.toJSON() as { kind: string; metadata: { name: string; namespace?: string }; spec?: { template?: { spec?: { containers?: { args?: string[] }[] } } } });
  const args = docs.find((d) => d.kind === 'Deployment')!.spec!.template!.spec!.containers![0]!.args!;
  const flag = args.filter((a) => a.startsWith('--providers.kubernetesingress.namespaces='));
  t.is(flag.length, 1, args.join(' '));
  const watched = flag[0]!.split('=')[1]!.split(',');
  const [, , ingress] = renderEchoObjects(echoRef('abc123'), 'echo-abc123.mail.test');
  t.true(watched.includes(ingress!.metadata.namespace!), `Traefik watches ${watched.join(', ')}; the suite's Ingress is in ${ingress!.metadata.namespace}`);
  t.true(docs.some((d) => d.kind === 'Namespace' && d.metadata.name === ingress!.metadata.namespace), 'the bootstrap renders the namespace');
  t.true(docs.some((d) => d.kind === 'Role' && d.metadata.namespace === ingress!.metadata.namespace), "Traefik's Role is in it");
});

test('connect and nslookup outputs are read the way a policy shows itself: a drop is a timeout, a refusal got through', (t) => {
  t.is(classifyConnect(0, ''), 'connected');
  t.is(classifyConnect(1, 'TIMEOUT\n'), 'timeout');
  t.is(classifyConnect(1, 'REFUSED\n'), 'refused');
  t.is(classifyConnect(1, 'DNS\n'), 'dns');
  t.is(classifyConnect(1, 'OTHER: dial tcp: network is unreachable\n'), 'other');
  t.is(classifyConnect(undefined, ''), 'unknown');
  const answered = 'Server:\t\t10.96.0.10\nAddress:\t10.96.0.10:53\n\nName:\tkubernetes.default.svc.cluster.local\nAddress: 10.96.0.1\n\n';
  t.deepEqual(parseNslookup(0, answered, 'kubernetes.default.svc.cluster.local'), { answered: true, addresses: ['10.96.0.1'] });
  t.deepEqual(parseNslookup(1, ';; connection timed out; no servers could be reached\n\n', 'kubernetes.default.svc.cluster.local'), { answered: false, addresses: [] });
});

testUnless(missingCommand('openssl'), 'the served certificate must be the Certificate\'s: SAN, NotAfter, serverAuth and a key that matches', async (t) => {
  await withTempDir(async (dir) => {
    const ca = await ensureLabCa(dir, 'lab');
    const wildcard = await issueServerCertificate(ca, dir, 'wild', { dnsNames: ['*.mail.test', 'mail.test'], ipAddresses: [] });
    const other = await issueServerCertificate(ca, dir, 'other', { dnsNames: ['*.elsewhere.test'], ipAddresses: [] });
    const cert = new X509Certificate(wildcard.certPem);
    const certificate = { metadata: { name: 'lab-wildcard', namespace: 'traefik', generation: 1 }, spec: { dnsNames: ['*.mail.test', 'mail.test'] }, status: { notAfter: new Date(cert.validTo).toISOString() } };
    const good = tlsMatches(cert, certificate, { cert, keyPem: wildcard.keyPem }, 'mail.test');
    t.true(good.ok, good.detail);
    const wrongServed = tlsMatches(new X509Certificate(other.certPem), certificate, { cert, keyPem: wildcard.keyPem }, 'mail.test');
    t.false(wrongServed.ok);
    t.regex(wrongServed.detail, /SAN \*\.mail\.test missing/);
    t.regex(wrongServed.detail, /served certificate is not the one in the secret/);
    const wrongKey = tlsMatches(cert, certificate, { cert, keyPem: other.keyPem }, 'mail.test');
    t.regex(wrongKey.detail, /the secret's key does not match its certificate/);
    const stale = tlsMatches(cert, { ...certificate, status: { notAfter: '2020-01-01T00:00:00Z' } }, { cert, keyPem: wildcard.keyPem }, 'mail.test');
    t.regex(stale.detail, /NotAfter .* ≠ Certificate status 2020-01-01T00:00:00Z/);
  });
});

const noCluster: AcceptanceContext = {
  address: '127.0.0.1',
  ports: {},
  caCert: '',
  tlsName: 'localhost',
  cluster: { missing: OS_ONLY_REASON },
  dnsDomain: 'cluster.local',
  ingressDomain: 'lab.test',
};

test('on an OS-only lab every cluster check is not ok at once, with the plain reason', async (t) => {
  for (const check of [...CLUSTER_CHECKS, ...CLUSTER_READY_CHECKS.filter((c) => c.id !== 'coredns-answers')]) {
    const r = await runCheck(check, noCluster);
    t.false(r.ok, check.id);
    t.is(r.detail, OS_ONLY_REASON, check.id);
    t.is(r.attempts, 1, `${check.id}: nothing to retry`);
  }
});

test('the suite on a server with no cluster: host checks skip or pass, cluster checks fail plainly, reports and a bundle are written', async (t) => {
  await withTempDir(async (dir) => {
    const run1 = await runAcceptanceSuite({ ctx: noCluster, name: 'no-cluster', reportDir: dir, now: () => new Date('2026-11-26T16:00:00Z') });
    const { host, cluster } = suiteChecks(noCluster);
    t.is(run1.report.count, host.length + cluster.length);
    t.is(run1.report.fail, cluster.length);
    t.is(run1.report.skip, host.length, 'no SSH and no forwards: every host check says why it skipped');
    const reparsed = await parseTap(await readFile(run1.files.tap, 'utf8'));
    t.is(reparsed.fail, cluster.length);
    t.regex(await readFile(run1.files.junit, 'utf8'), new RegExp(`tests="${host.length + cluster.length}" failures="${cluster.length}" errors="0" skipped="${host.length}"`));
    const json = JSON.parse(await readFile(run1.files.json, 'utf8')) as { checks: { name: string; ok: boolean; attempts?: number; reproduce?: string; hint?: string }[] };
    const nodeReady = json.checks.find((c) => c.name.startsWith('node-ready'))!;
    t.is(nodeReady.attempts, 1);
    t.regex(nodeReady.reproduce!, /kubectl --kubeconfig KUBECONFIG get nodes -o wide/);
    t.truthy(nodeReady.hint);
    t.is(run1.bundle, join(dir, 'bundle-2026-11-26T16-00-00-000Z'));
    t.regex(await readFile(join(run1.bundle!, 'failed-checks.txt'), 'utf8'), /✗ node-ready: .*\n  saw: no Kubernetes in this image/);
    t.regex(await readFile(join(run1.bundle!, 'errors.txt'), 'utf8'), /cluster: no Kubernetes in this image[\s\S]*node journals: no SSH access/);
    t.true(existsSync(join(run1.bundle!, 'logs')));
  });
});

test("ingress checks pass only on Traefik's own 404: not on another server's 404, not on a 200", async (t) => {
  const { createServer: createHttp } = await import('node:http');
  const check = CLUSTER_CHECKS.find((c) => c.id === 'ingress-404-host-port')!;
  const answers: [string, number, string, Record<string, string>, boolean][] = [
    // What Traefik v3 writes for a Host no router matches.
    ['traefik', 404, '404 page not found\n', { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' }, true],
    ['nginx', 404, '<html><head><title>404 Not Found</title></head></html>\n', { 'content-type': 'text/html', server: 'nginx' }, false],
    ['a backend', 200, 'ok\n', { 'content-type': 'text/plain' }, false],
  ];
  for (const [who, status, body, headers, expected] of answers) {
    const srv = createHttp((_req, res) => res.writeHead(status, headers).end(body));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as AddressInfo).port;
    // The check only needs to know a cluster exists; it never calls the API.
    const ctx: AcceptanceContext = { ...noCluster, ports: { http: port }, cluster: { kube: new KubeClient({ server: 'https://127.0.0.1:9' }), kubeconfig: 'kubeconfig' } };
    const r = await runCheck({ ...check, retry: { attempts: 1, intervalMs: 0 } }, ctx);
    srv.close();
    t.is(r.ok, expected, `${who}: ${r.detail}`);
    t.regex(r.detail, new RegExp(`^HTTP ${status}, body `));
  }
});
