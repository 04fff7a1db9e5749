/**
 * Workloads before boot: fixture sources (test/fixtures/workloads/) loaded with file and line,
 * validated against the Kubernetes models and the real upstream CRDs (cert-manager v1.21.1,
 * Calico v3.32.1 from the shared upstream directory), kustomizations rendered with Debian's
 * kustomize, the apply plan's order and waits, lab.yaml's paths and secrets, and lab:render.
 */
import test from 'ava';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseLabConfig, loadLabConfig, resolveWorkloadPaths } from '../../config/load.ts';
import type { LabConfig } from '../../config/lab-config.ts';
import { ConfigError } from '../../core/errors.ts';
import { renderLab } from '../../lab/render.ts';
import { LAB_UP_STEPS } from '../../lab/up.ts';
import { ensureHostKustomize } from '../../lab/workloads/kustomize.ts';
import { parseManifestText } from '../../lab/workloads/manifests.ts';
import { MODELS_KUBERNETES_VERSION } from '../../lab/workloads/schemas.ts';
import { prepareWorkloads, WorkloadError, type PrepareOptions } from '../../lab/workloads/prepare.ts';
import type { UpstreamTexts } from '../../cloud-init/addons/bundle.ts';
import { NEUTRAL_HOST, UPSTREAM_DIR, testUnless, withTempDir } from '../helpers.ts';

const FIXTURES = resolve('test/fixtures/workloads');
const CM_DIR = join(UPSTREAM_DIR, 'cert-manager-v1.21.1-crds');
const CALICO = join(UPSTREAM_DIR, 'calico-v3.32.1.yaml');
const noUpstream = existsSync(CM_DIR) && existsSync(CALICO) ? undefined : `upstream CRDs not found in ${UPSTREAM_DIR}`;

/** The add-on manifests as the product reads them: Calico's whole manifest, cert-manager's CRDs (its release manifest carries the same). */
function upstreamTexts(): Partial<UpstreamTexts> {
  if (noUpstream) return {};
  const cm = readdirSync(CM_DIR).sort().map((f) => readFileSync(join(CM_DIR, f), 'utf8')).join('\n---\n');
  // cert-manager's release manifest also makes its namespace; the CRD files alone do not.
  return { calico: readFileSync(CALICO, 'utf8'), 'local-path': readFileSync(join(UPSTREAM_DIR, 'local-path-storage-v0.0.36.yaml'), 'utf8'), 'cert-manager': `${cm}\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: cert-manager\n` };
}

function configWith(yaml: string, base = FIXTURES): LabConfig {
  const r = parseLabConfig(yaml, NEUTRAL_HOST, '/tmp/labsmith-test-state');
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return { ...r.config, workloads: resolveWorkloadPaths(r.config.workloads, base) };
}

const noKustomize = { unavailable: 'not wanted in this test' };
const prepare = (config: LabConfig, opts: Partial<PrepareOptions> = {}) => prepareWorkloads(config, { upstream: upstreamTexts(), renderer: async () => noKustomize, ...opts });

async function problemsOf(config: LabConfig, opts: Partial<PrepareOptions> = {}): Promise<string[]> {
  const error = await prepare(config, opts).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof WorkloadError)) throw new Error(`expected a WorkloadError, got ${String(error)}`);
  return error.message.split('\n').slice(1).map((l) => l.replace(/^ {2}- /, ''));
}

test('every document of a multi-document file keeps its file, line and the line of each field', (t) => {
  const text = '# comment\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v\n---\n---\napiVersion: v1\nkind: List\nitems:\n  - apiVersion: v1\n    kind: Secret\n    metadata: { name: b }\n';
  const { objects, problems } = parseManifestText(text, 'x.yaml', 'src');
  t.deepEqual(problems, []);
  t.deepEqual(objects.map((o) => [o.object.kind, o.line]), [['ConfigMap', 2], ['Secret', 13]]);
  t.is(objects[0]!.lineOf(['data', 'k']), 7);
  t.is(objects[0]!.lineOf(['data', 'missing']), 6, 'a missing field: its parent');
  t.is(objects[1]!.lineOf(['metadata', 'name']), 15);
  const broken = parseManifestText('apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: x-\n---\nkey: [unclosed\n', 'y.yaml', 'src');
  t.deepEqual(broken.problems.map((p) => [p.line, p.path]), [[3, 'metadata.name'], [6, '']], 'a missing field: the line of its parent');
  t.regex(broken.problems[0]!.message, /generateName/);
  t.regex(broken.problems[1]!.message, /not valid YAML/);
});

testUnless(noUpstream, 'good plain sources validate against the models and the real cert-manager and Calico CRDs; the plan orders namespaces first and waits for each rollout', async (t) => {
  const prepared = await prepare(configWith('workloads:\n  - path: mail\n  - path: web\n    rolloutTimeoutSeconds: 90\n'));
  t.deepEqual(prepared.notes, []);
  const [mail, web] = prepared.plan.sources;
  t.is(mail!.dirName, '01-mail');
  t.deepEqual(mail!.first.map((o) => `${o.kind}/${o.metadata.name}`), ['Namespace/mail']);
  t.deepEqual(mail!.objects.map((o) => o.kind), ['Deployment', 'Service', 'Certificate'], 'file order, the namespace taken out');
  t.deepEqual(mail!.rollouts, [{ kind: 'Deployment', namespace: 'mail', name: 'postfix' }]);
  t.is(mail!.rolloutTimeoutSeconds, 300);
  t.deepEqual(web!.rollouts, [{ kind: 'StatefulSet', namespace: 'default', name: 'db' }, { kind: 'DaemonSet', namespace: 'kube-system', name: 'node-agent' }]);
  t.is(web!.rolloutTimeoutSeconds, 90);
  // The change report names each object as kubectl diff does.
  t.true(prepared.known.some((k) => k.diffName === 'v1.Namespace..mail'));
  t.true(prepared.known.some((k) => k.diffName === 'cert-manager.io.v1.Certificate.mail.mail-tls'));
  t.true(prepared.known.some((k) => k.diffName === 'crd.projectcalico.org.v1.IPPool..extra-pool'), 'IPPool is cluster-scoped by its CRD');
});

testUnless(noUpstream, 'bad manifests: every problem at once, each with file:line, object and field path', async (t) => {
  const problems = await problemsOf(configWith('workloads:\n  - path: bad\n'));
  const f = 'test/fixtures/workloads/bad/app.yaml';
  t.deepEqual(problems, [
    `${f}:7: Deployment shop/web: spec.replicas: must be integer`,
    `${f}:18: Deployment shop/web: spec.template.spec.containers[0].ports[0].containerPort: must be integer`,
    `${f}:5: Deployment shop/web: metadata.namespace: namespace shop does not exist: no Namespace object in the sources defines it, and the cluster makes only cert-manager, default, kube-node-lease, kube-public, kube-system, labsmith-e2e, local-path-storage, traefik`,
    `${f}:21: IngressRoute web: kind: unknown kind IngressRoute (traefik.io/v1alpha1): no Kubernetes model and no CustomResourceDefinition in the add-ons or the sources defines it; Traefik runs in this lab without its CRDs (its file provider serves the lab's certificate): use an Ingress, or put Traefik's CRDs in a workloads source`,
    `${f}:33: Certificate web-tls: spec.dnsName: is not a field of this kind`,
    `${f}:36: Ingress old: apiVersion: extensions/v1beta1 is not served by Kubernetes 1.37: use networking.k8s.io/v1`,
    `${f}:49: ConfigMap default/settings: defined twice: also at ${f}:42`,
  ]);
});

testUnless(noUpstream, "a kind defined by a CRD in the sources is validated against that CRD's schema; a duplicate across sources names both", async (t) => {
  const problems = await problemsOf(configWith('workloads:\n  - path: crd-source\n  - path: crd-source\n    name: again\n'));
  const f = 'test/fixtures/workloads/crd-source/mailboxes.yaml';
  t.true(problems.includes(`${f}:13: Mailbox bob: spec.address: is required`), problems.join('\n'));
  t.true(problems.includes(`${f}:15: Mailbox bob: spec.aliases: is not a field of this kind`));
  t.true(problems.includes(`${f}:14: Mailbox bob: spec.quotaMiB: must be integer`));
  t.false(problems.some((p) => /Mailbox alice/.test(p) && !/defined twice/.test(p)), 'the good one passes');
  t.true(problems.some((p) => /CustomResourceDefinition mailboxes.mail.example.test: defined twice: also at test\/fixtures\/workloads\/crd-source\/crd.yaml:1 \(source crd-source\)/.test(p)));
});

test('without the add-on manifests cached, their kinds are named as not validated (not as unknown)', async (t) => {
  const problems = await problemsOf(configWith('workloads:\n  - path: mail\n'), { upstream: {} });
  t.is(problems.length, 1, problems.join('\n'));
  t.regex(problems[0]!, /10-postfix.yaml:36: Certificate mail\/mail-tls: kind: Certificate \(cert-manager.io\/v1\) not validated: the cert-manager add-on's locked manifest .* is not in the cache yet/);
  // lab:render (placeholders) shows it as a note and renders.
  const rendered = await prepare(configWith('workloads:\n  - path: mail\n'), { upstream: {}, placeholders: true, deferUnavailable: true });
  t.is(rendered.notes.length, 1);
  t.regex(rendered.notes[0]!, /Certificate mail\/mail-tls: kind: Certificate \(cert-manager.io\/v1\) not validated/);
});

test(`the models are Kubernetes ${MODELS_KUBERNETES_VERSION}'s: a kind GA only later has no schema and is named (a file outside the working directory by its absolute path)`, async (t) => {
  await withTempDir(async (dir) => {
    await mkdir(join(dir, 'new'));
    await writeFile(join(dir, 'new', 'vac.yaml'), 'apiVersion: storage.k8s.io/v1\nkind: VolumeAttributesClass\nmetadata:\n  name: fast\ndriverName: x\n');
    const problems = await problemsOf(configWith('workloads:\n  - path: new\n', dir));
    t.deepEqual(problems, [`${join(dir, 'new', 'vac.yaml')}:2: VolumeAttributesClass fast: kind: storage.k8s.io/v1 VolumeAttributesClass: no such built-in kind in the Kubernetes 1.33 models (kubernetes-models 4.5.0)`]);
  });
});

test('secrets: a missing file and an unset variable are errors naming the field path, before anything runs', async (t) => {
  await withTempDir(async (dir) => {
    await mkdir(join(dir, 'app'));
    await writeFile(join(dir, 'app', 'cm.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n');
    await writeFile(join(dir, 'short'), 'ab\n');
    const config = configWith(
      'workloads:\n  - path: app\n    secrets:\n      - name: relay\n        namespace: default\n        data:\n          password: { file: relay-password }\n          token: { env: LABSMITH_TEST_UNSET_TOKEN }\n          pin: { file: short }\n      - name: orphan\n        namespace: nowhere\n        data:\n          key: { env: HOME }\n',
      dir,
    );
    const error = (await prepare(config, { env: { HOME: '/root-value-here' } }).catch((e: unknown) => e)) as WorkloadError;
    t.true(error instanceof WorkloadError);
    t.is(error.exitCode, 2);
    t.deepEqual(error.configProblems.map((p) => p.path), ['workloads.0.secrets.0.data.password.file', 'workloads.0.secrets.0.data.token.env', 'workloads.0.secrets.0.data.pin']);
    t.regex(error.configProblems[0]!.message, new RegExp(`cannot read ${join(dir, 'relay-password')} \\(ENOENT\\)`));
    t.regex(error.configProblems[1]!.message, /LABSMITH_TEST_UNSET_TOKEN is not set/);
    t.regex(error.configProblems[2]!.message, /shorter than 4 characters/);
    t.deepEqual(error.problems.map((p) => p.message.split(':')[0]), ['namespace nowhere does not exist'], "the Secret labsmith makes is checked like the manifests' objects");
  });
});

test("lab.yaml: a workload path is relative to lab.yaml's directory, and one that is not a directory is an error naming the field", async (t) => {
  await withTempDir(async (dir) => {
    await mkdir(join(dir, 'conf', 'manifests'), { recursive: true });
    await writeFile(join(dir, 'conf', 'lab.yaml'), 'workloads:\n  - path: manifests\n    secrets:\n      - { name: s, namespace: default, data: { k: { file: ./k.txt } } }\n');
    const config = await loadLabConfig(join(dir, 'conf', 'lab.yaml'), { host: NEUTRAL_HOST });
    t.is(config.workloads[0]!.path, join(dir, 'conf', 'manifests'));
    t.is(config.workloads[0]!.name, 'manifests');
    t.is(config.workloads[0]!.secrets[0]!.data.k!.file, join(dir, 'conf', 'k.txt'));
    await writeFile(join(dir, 'conf', 'lab.yaml'), 'workloads:\n  - path: manifests\n  - path: missing\n  - path: manifests\n    secrets:\n      - { name: s, namespace: default, data: { k: { file: a, env: B } } }\n');
    const error = (await loadLabConfig(join(dir, 'conf', 'lab.yaml'), { host: NEUTRAL_HOST }).catch((e: unknown) => e)) as ConfigError;
    t.true(error instanceof ConfigError);
    t.deepEqual(error.problems.map((p) => p.path), ['workloads.2.name', 'workloads.2.secrets.0.data.k']);
    await writeFile(join(dir, 'conf', 'lab.yaml'), 'workloads:\n  - path: missing\n');
    const missing = (await loadLabConfig(join(dir, 'conf', 'lab.yaml'), { host: NEUTRAL_HOST }).catch((e: unknown) => e)) as ConfigError;
    t.deepEqual(missing.problems.map((p) => p.path), ['workloads.0.path']);
    t.regex(missing.problems[0]!.message, /is not a directory/);
    // lab:down and lab:status need no manifests.
    await t.notThrowsAsync(loadLabConfig(join(dir, 'conf', 'lab.yaml'), { purpose: 'existing' }));
  });
});

// Debian ships kustomize (trixie 5.6.0, forky 5.8.1); forky's is fetched into the cache like trixie's etcd.
const kustomize = ensureHostKustomize().catch((e: Error) => e);

test('kustomize: Debian forky\'s kustomize renders the overlay on the host; a problem names the base file and line it came from', async (t) => {
  const tool = await kustomize;
  if (tool instanceof Error) return t.fail(`Debian's kustomize could not be fetched: ${tool.message}`);
  t.regex(tool.version, /kustomize/);
  const config = configWith('workloads:\n  - path: kustomize/overlay\n');
  const problems = await problemsOf(config, { renderer: async () => tool });
  t.deepEqual(problems, ['test/fixtures/workloads/kustomize/base/deployment.yaml:19: Deployment dns/lab-dns: spec.template.spec.containers[0].resources.limits.memory: must be a quantity, e.g. 512Mi, 2 or 500m']);
});

test('kustomize: a good overlay is planned from its rendering (namespace first, waits), the origin annotation removed, the directory shipped for the guest', async (t) => {
  const tool = await kustomize;
  if (tool instanceof Error) return t.fail(`Debian's kustomize could not be fetched: ${tool.message}`);
  await withTempDir(async (dir) => {
    await copyTree(join(FIXTURES, 'kustomize'), join(dir, 'k'));
    const deployment = join(dir, 'k', 'base', 'deployment.yaml');
    await writeFile(deployment, (await readFile(deployment, 'utf8')).replace('lots-of', '64Mi'));
    const prepared = await prepare(configWith('workloads:\n  - path: k/overlay\n', dir), { renderer: async () => tool });
    const [source] = prepared.plan.sources;
    t.is(source!.format, 'kustomization');
    t.is(source!.kustomizationDir, join(dir, 'k', 'overlay'));
    t.deepEqual(source!.first.map((o) => `${o.kind}/${o.metadata.name}`), ['Namespace/dns']);
    t.deepEqual(source!.objects, [], 'the rest is rendered in the guest');
    t.deepEqual(source!.rollouts, [{ kind: 'Deployment', namespace: 'dns', name: 'lab-dns' }]);
    t.is(source!.first[0]!.metadata.annotations, undefined);
  });
  const unrendered = await prepare(configWith('workloads:\n  - path: kustomize/overlay\n'));
  t.regex(unrendered.notes[0]!, /kustomization.yaml: not rendered on this host \(not wanted in this test\); it is validated after rendering in the guest/);
});

async function copyTree(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const e of await readdir(from, { withFileTypes: true })) {
    if (e.isDirectory()) await copyTree(join(from, e.name), join(to, e.name));
    else await writeFile(join(to, e.name), await readFile(join(from, e.name)));
  }
}

testUnless(noUpstream, 'lab:render writes the resolved workloads: the objects as applied, secrets as named placeholders', async (t) => {
  await withTempDir(async (dir) => {
    const config = configWith('workloads:\n  - path: mail\n    secrets:\n      - name: postfix-relay\n        namespace: mail\n        data:\n          password: { file: /nonexistent/relay-password }\n');
    const written = await renderLab(config, join(dir, 'out'), { upstream: upstreamTexts() });
    const file = written.find((w) => w.endsWith('workloads/01-mail.yaml'));
    t.truthy(file, written.join('\n'));
    const text = await readFile(file!, 'utf8');
    t.regex(text, /kind: Namespace\n/);
    t.true(text.indexOf('kind: Namespace') < text.indexOf('kind: Deployment'), 'in apply order');
    t.regex(text, /password: "?<secret postfix-relay\/password: from file \/nonexistent\/relay-password, read at lab:up>/);
    t.regex(await readFile(written.find((w) => w.endsWith('workloads/plan.txt'))!, 'utf8'), /01-mail: .*wait for Deployment mail\/postfix \(300s\)/);
  });
});

test('lab:up validates the workloads before the image build (and the add-on kinds after it, when their manifests were not cached), before boot, and applies them once the cluster is usable', (t) => {
  const titles = LAB_UP_STEPS.map((s) => s.title);
  const at = (title: string) => {
    const i = titles.indexOf(title);
    t.not(i, -1, title);
    return i;
  };
  t.true(at('Checking host ports are free') < at('Validating workloads'));
  t.true(at('Validating workloads') < at('Building or reusing the image'), 'before the long build, with the add-on manifests cached');
  t.true(at('Building or reusing the image') < at('Validating workloads against the add-ons'), 'kinds of add-ons whose manifest came with the build');
  t.true(at('Validating workloads against the add-ons') < at('Booting the VM'));
  t.true(at('Checking the cluster is usable') < at('Applying workloads'));
  t.true(at('Applying workloads') < at('Running checks'));
});
