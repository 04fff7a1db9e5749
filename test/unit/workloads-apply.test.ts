/**
 * Workloads after boot, up to the line a live cluster would stand on: rollout verdicts on
 * recorded API objects; the rollout wait against the API server stand-in (events and log lines
 * in its error); the guest apply script (shellcheck clean) run for real, through the same
 * receive command lab:up and lab:apply send over SSH, against the stand-in kubectl (it records
 * argv and -f files and answers like kubectl; its `kubectl kustomize` is Debian's kustomize);
 * the change report from that output; and secret values redacted from progress, both log
 * bundles, the reports and lab:render. No apply runs against a live cluster here.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseLabConfig, resolveWorkloadPaths } from '../../config/load.ts';
import type { LabConfig } from '../../config/lab-config.ts';
import { LabError } from '../../core/errors.ts';
import { run } from '../../core/exec.ts';
import { HOST_TOOLS } from '../../core/host-tools.ts';
import { Progress } from '../../core/progress.ts';
import { clearSecretValues, redactSecrets } from '../../core/redact.ts';
import { renderTar } from '../../core/tar.ts';
import { writeLogBundle } from '../../lab/acceptance/cluster/bundle.ts';
import { saveFailureBundle } from '../../lab/failure-bundle.ts';
import { renderLab } from '../../lab/render.ts';
import type { PodObject } from '../../lab/kube/readiness.ts';
import { applyScriptPath, waitForRollout, readKustomizationFiles } from '../../lab/workloads/apply.ts';
import { parseApplyOutput, parseDiff, renderChanges, summarizeChanges } from '../../lab/workloads/changes.ts';
import { ensureHostKustomize } from '../../lab/workloads/kustomize.ts';
import { GUEST_RECEIVE_COMMAND, renderApplyPayload } from '../../lab/workloads/payload.ts';
import type { RolloutTarget } from '../../lab/workloads/plan.ts';
import { prepareWorkloads } from '../../lab/workloads/prepare.ts';
import { reapplyWorkloads } from '../../lab/workloads/reapply.ts';
import { rolloutVerdict, type WorkloadStatusObject } from '../../lab/workloads/rollout.ts';
import { startApiStandIn } from '../fixtures/k8s/api-server.ts';
import { writeKubeStandins } from '../fixtures/kube-standins.ts';
import { missingCommand, NEUTRAL_HOST, testUnless, withTempDir } from '../helpers.ts';

const FIXTURES = resolve('test/fixtures/workloads');
const recorded = <T>(name: string): T => JSON.parse(readFileSync(resolve('test/fixtures/k8s/rollout', name), 'utf8')) as T;
const crashPods = recorded<{ items: PodObject[] }>('pods-crashloop.json').items;
const healthyPod = crashPods.slice(0, 1);

function configWith(yaml: string, base = FIXTURES): LabConfig {
  const r = parseLabConfig(yaml, NEUTRAL_HOST, '/tmp/labsmith-test-state');
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return { ...r.config, workloads: resolveWorkloadPaths(r.config.workloads, base) };
}

const deploy: RolloutTarget = { kind: 'Deployment', namespace: 'mail', name: 'postfix' };

test('rollout verdicts on recorded Deployments, StatefulSets and DaemonSets', (t) => {
  const verdict = (file: string, pods: PodObject[] = healthyPod, target = deploy) => rolloutVerdict(target, recorded<WorkloadStatusObject>(file), pods);
  t.like(verdict('deployment-complete.json'), { state: 'ready', detail: '2/2 replicas available' });
  t.like(verdict('deployment-progressing.json'), { state: 'progressing', detail: '1 of 2 replicas updated' });
  t.like(verdict('deployment-stale-generation.json'), { state: 'progressing', detail: 'waiting for the controller to observe generation 4 (seen 3)' });
  const deadline = verdict('deployment-deadline-exceeded.json', crashPods);
  t.is(deadline.state, 'failed');
  t.regex(deadline.detail, /^ProgressDeadlineExceeded: ReplicaSet "postfix-7f4c9d6b8c" has timed out progressing/);
  t.is(deadline.failingPod, 'postfix-7f4c9d6b8c-9wz4k');
  t.is(verdict('deployment-progressing.json', crashPods).failingContainer, 'postfix');
  const crashing = verdict('deployment-progressing.json', crashPods);
  t.is(crashing.state, 'failed', 'a crash-looping pod does not heal by waiting');
  t.regex(crashing.detail, /1 of 2 replicas updated; pod postfix-7f4c9d6b8c-9wz4k: container postfix CrashLoopBackOff \(restarted 4 times\)/);
  t.like(rolloutVerdict(deploy, undefined, []), { state: 'progressing', detail: 'not found yet' });
  const sts = { kind: 'StatefulSet' as const, namespace: 'default', name: 'db' };
  t.like(verdict('statefulset-rolling.json', [], sts), { state: 'progressing', detail: '1 of 1 pods at revision db-6f8b9c7d4' });
  t.like(verdict('statefulset-complete.json', [], sts), { state: 'ready' });
  const ds = { kind: 'DaemonSet' as const, namespace: 'kube-system', name: 'node-agent' };
  t.like(verdict('daemonset-progressing.json', [], ds), { state: 'progressing', detail: '0 of 1 updated pods available' });
  t.like(verdict('daemonset-complete.json', [], ds), { state: 'ready', detail: '1/1 pods available' });
});

testUnless(missingCommand('openssl'), "the rollout wait polls the API; a crash-looping rollout fails at once with the pod's events and last log lines", async (t) => {
  await withTempDir(async (dir) => {
    const api = await startApiStandIn(dir);
    try {
      const progress = new Progress('plain', () => undefined);
      const path = '/apis/apps/v1/namespaces/mail/deployments/postfix';
      api.objects.set(path, recorded('deployment-progressing.json'));
      for (const p of crashPods) api.objects.set(`/api/v1/namespaces/mail/pods/${p.metadata.name}`, p as never);
      for (const [i, e] of recorded<{ items: object[] }>('events-crashloop.json').items.entries()) api.objects.set(`/api/v1/namespaces/mail/events/e${i}`, e as never);
      api.intercept = (req) => (req.path.endsWith('/postfix-7f4c9d6b8c-9wz4k/log') && api.requests.at(-1)!.path.includes('container=postfix') ? { status: 200, body: 'postfix/master[1]: fatal: bind 0.0.0.0 port 25: Address in use\n' } : undefined);
      const error = await waitForRollout({ kube: api.kube, progress, pollMs: 50 }, deploy, 30).catch((e: unknown) => e);
      t.true(error instanceof LabError);
      const message = (error as LabError).message;
      t.regex(message, /^Deployment mail\/postfix failed to roll out: 1 of 2 replicas updated; pod postfix-7f4c9d6b8c-9wz4k: container postfix CrashLoopBackOff/);
      t.regex(message, /events of pod postfix-7f4c9d6b8c-9wz4k:\n {4}Normal Pulled: .*\(x5\)\n {4}Warning BackOff: Back-off restarting failed container postfix/);
      t.notRegex(message, /Successfully assigned/, "another pod's events are left out");
      t.regex(message, /last log lines of pod postfix-7f4c9d6b8c-9wz4k:\n {4}postfix\/master\[1\]: fatal: bind 0.0.0.0 port 25: Address in use/);
      // A rollout that finishes while it is being waited for.
      api.objects.set(path, recorded('deployment-progressing.json'));
      for (const p of crashPods.slice(1)) api.objects.delete(`/api/v1/namespaces/mail/pods/${p.metadata.name}`);
      setTimeout(() => api.objects.set(path, recorded('deployment-complete.json')), 300);
      t.like(await waitForRollout({ kube: api.kube, progress, pollMs: 50 }, deploy, 30), { state: 'ready' });
      // The budget ends: the error says so and what it last saw.
      api.objects.set(path, recorded('deployment-stale-generation.json'));
      const timeout = (await waitForRollout({ kube: api.kube, progress, pollMs: 50 }, deploy, 0.3).catch((e: unknown) => e)) as LabError;
      t.regex(timeout.message, /^Deployment mail\/postfix did not roll out within 0.3s: waiting for the controller to observe generation 4/);
    } finally {
      await api.close();
    }
  });
});

test('lab:apply on a lab that is not running exits 3, naming it', async (t) => {
  await withTempDir(async (dir) => {
    await mkdir(join(dir, 'm'));
    await writeFile(join(dir, 'lab.yaml'), `name: not-up\nstateDir: ${join(dir, 'state')}\nworkloads:\n  - path: m\n`);
    const error = (await reapplyWorkloads({ configFile: join(dir, 'lab.yaml'), lockFile: join(dir, 'none.json'), progress: new Progress('plain', () => undefined) }).catch((e: unknown) => e)) as LabError;
    t.true(error instanceof LabError);
    t.is(error.exitCode, 3);
    t.is(error.message, 'lab not-up is not running');
  });
});

test('the change report: kubectl diff names created and configured objects; the rest are unchanged', (t) => {
  const out = [
    '@@labsmith source-begin mail',
    '@@labsmith diff-begin first',
    'diff -u -N /tmp/LIVE-1/v1.Namespace..mail /tmp/MERGED-2/v1.Namespace..mail',
    '--- /tmp/LIVE-1/v1.Namespace..mail',
    '+++ /tmp/MERGED-2/v1.Namespace..mail',
    '@@ -0,0 +1,5 @@',
    '+apiVersion: v1',
    '@@labsmith diff-end first 1',
    '@@labsmith apply-begin first',
    'namespace/mail serverside-applied',
    '@@labsmith apply-end first 0',
    '@@labsmith diff-begin objects',
    'diff -u -N /tmp/LIVE-3/apps.v1.Deployment.mail.postfix /tmp/MERGED-4/apps.v1.Deployment.mail.postfix',
    '@@ -6,7 +6,7 @@',
    '@@labsmith diff-end objects 1',
    '@@labsmith source-end mail',
  ].join('\n');
  const sources = parseApplyOutput(out);
  t.is(sources.length, 1);
  t.true(sources[0]!.complete);
  t.deepEqual(sources[0]!.phases.map((p) => [p.phase, p.diff?.exitCode, p.apply?.exitCode]), [['first', 1, 0], ['objects', 1, undefined]]);
  t.deepEqual([...parseDiff(sources[0]!.phases[0]!.diff!.text)], [['v1.Namespace..mail', 'created']]);
  const lines = summarizeChanges(sources, [
    { source: 'mail', diffName: 'v1.Namespace..mail', display: 'Namespace mail' },
    { source: 'mail', diffName: 'apps.v1.Deployment.mail.postfix', display: 'Deployment mail/postfix' },
    { source: 'mail', diffName: 'v1.Service.mail.postfix', display: 'Service mail/postfix' },
  ]);
  t.is(renderChanges(lines), 'created    mail: Namespace mail\nconfigured mail: Deployment mail/postfix\nunchanged  mail: Service mail/postfix\n1 created, 1 configured, 1 unchanged\n');
});

test('the payload tar is read by the real tar: modes kept, long paths split into the ustar prefix', async (t) => {
  await withTempDir(async (dir) => {
    const long = `${'d'.repeat(90)}/${'e'.repeat(60)}/file.yaml`;
    const tar = renderTar([{ path: 'a/', mode: 0o700 }, { path: 'a/s.yaml', mode: 0o600, content: Buffer.from('secret: x\n') }, { path: long, mode: 0o644, content: Buffer.from('long\n') }]);
    await run('tar', ['-x', '-C', dir], { input: tar });
    t.is((await stat(join(dir, 'a', 's.yaml'))).mode & 0o777, 0o600);
    t.is(await readFile(join(dir, 'a', 's.yaml'), 'utf8'), 'secret: x\n');
    t.is(await readFile(join(dir, long), 'utf8'), 'long\n');
  });
});

testUnless(missingCommand('shellcheck'), 'shellcheck: the guest apply script and its rendered parameter files are clean', async (t) => {
  t.true(HOST_TOOLS.find((x) => x.command === 'shellcheck')!.purpose.includes('lab/workloads/guest/'));
  const r = await run('shellcheck', ['--norc', applyScriptPath()], { allowFailure: true });
  t.is(r.exitCode, 0, r.stdout);
  await withTempDir(async (dir) => {
    await mkdir(join(dir, 'app'));
    await writeFile(join(dir, 'app', 'cm.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n');
    const prepared = await prepareWorkloads(configWith('workloads:\n  - path: app\n', dir), { upstream: {}, renderer: async () => ({ unavailable: 'x' }) }).catch((e: Error) => e);
    if (prepared instanceof Error) return t.fail(prepared.message);
    const entries = renderApplyPayload({ plan: prepared.plan, script: '', diff: true, kustomizations: {} }).filter((e) => e.path.endsWith('.env'));
    t.true(entries.length >= 1);
    for (const e of entries) {
      const file = join(dir, e.path.replaceAll('/', '_'));
      await writeFile(file, e.content!);
      const c = await run('shellcheck', ['--norc', '--shell=sh', file], { allowFailure: true });
      t.is(c.exitCode, 0, `${e.path}: ${c.stdout}`);
    }
  });
});

const kustomize = ensureHostKustomize().catch((e: Error) => e);

/** Runs the receive command as SSH would run it in the guest, the payload on stdin, the stand-ins first on PATH. */
async function runInGuest(dir: string, payload: Buffer, env: Record<string, string> = {}) {
  const standins = await writeKubeStandins(dir);
  await mkdir(join(dir, 'guest-tmp'), { recursive: true });
  const files = join(dir, 'files');
  await mkdir(files);
  const kubeconfig = join(dir, 'admin.conf');
  await writeFile(kubeconfig, 'apiVersion: v1\n');
  const tool = await kustomize;
  const r = await run('sh', ['-c', GUEST_RECEIVE_COMMAND], {
    input: payload,
    allowFailure: true,
    env: { PATH: `${standins.bin}:${process.env.PATH}`, FIXTURE_CALLS: standins.calls, FIXTURE_FILES: files, FIXTURE_KUSTOMIZE: tool instanceof Error ? '/nonexistent' : tool.command, TMPDIR: join(dir, 'guest-tmp'), ...env },
  });
  return { r, calls: (await readFile(standins.calls, 'utf8').catch(() => '')).trim().split('\n'), files, kubeconfig };
}

/** The payload as lab:up sends it, with the guest's kubeconfig path pointed at the test's file. */
function payloadFor(entries: ReturnType<typeof renderApplyPayload>, kubeconfig: string): Buffer {
  return renderTar(entries.map((e) => (e.path === 'params.env' ? { ...e, content: Buffer.from(e.content!.toString().replace(/WORKLOADS_KUBECONFIG='[^']*'/, `WORKLOADS_KUBECONFIG='${kubeconfig}'`)) } : e)));
}

test.serial('the guest script applies a source in order (namespace and CRD first, CRD Established, Secrets, the rest) with server-side apply, diff first, and removes its directory', async (t) => {
  await withTempDir(async (dir) => {
    await mkdir(join(dir, 'guest-tmp'));
    await writeFile(join(dir, 'relay-password'), 's3cr3t-relay-value\n');
    const config = configWith(
      `workloads:\n  - path: ${join(FIXTURES, 'crd-source')}\n    secrets:\n      - name: relay\n        namespace: default\n        data:\n          password: { file: ${join(dir, 'relay-password')} }\n`,
    );
    // crd-source's bob is invalid on purpose: plan from alice alone.
    const src = join(dir, 'src');
    await mkdir(src);
    await writeFile(join(src, 'crd.yaml'), readFileSync(join(FIXTURES, 'crd-source', 'crd.yaml')));
    await writeFile(join(src, 'mailboxes.yaml'), readFileSync(join(FIXTURES, 'crd-source', 'mailboxes.yaml'), 'utf8').split('---')[0]!);
    await writeFile(join(src, 'ns.yaml'), 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: mailboxes\n');
    const prepared = await prepareWorkloads({ ...config, workloads: [{ ...config.workloads[0]!, path: src, name: 'src' }] }, { upstream: {}, renderer: async () => ({ unavailable: 'x' }) });
    try {
      const entries = renderApplyPayload({ plan: prepared.plan, script: readFileSync(applyScriptPath(), 'utf8'), diff: true, kustomizations: {} });
      const { r, calls, files } = await runInGuest(dir, payloadFor(entries, join(dir, 'admin.conf')), { FIXTURE_DIFF: 'created=v1.Namespace..mailboxes configured=mail.example.test.v1.Mailbox.default.alice' });
      t.is(r.exitCode, 0, r.stderr);
      const kubectl = calls.filter((c) => c.startsWith('kubectl'));
      t.deepEqual(kubectl, [
        'kubectl diff --server-side --field-manager=labsmith -f ' + kubectl[0]!.split(' -f ')[1],
        'kubectl apply --server-side --field-manager=labsmith -f ' + kubectl[1]!.split(' -f ')[1],
        'kubectl wait --for=condition=Established --timeout=60s customresourcedefinition/mailboxes.mail.example.test',
        'kubectl diff --server-side --field-manager=labsmith -f ' + kubectl[3]!.split(' -f ')[1],
        'kubectl apply --server-side --field-manager=labsmith -f ' + kubectl[4]!.split(' -f ')[1],
        'kubectl diff --server-side --field-manager=labsmith -f ' + kubectl[5]!.split(' -f ')[1],
        'kubectl apply --server-side --field-manager=labsmith -f ' + kubectl[6]!.split(' -f ')[1],
      ]);
      t.deepEqual(kubectl.filter((c) => / -f /.test(c)).map((c) => c.split('/').pop()), ['first.yaml', 'first.yaml', 'secrets.yaml', 'secrets.yaml', 'objects.yaml', 'objects.yaml']);
      t.true(calls.filter((c) => c.startsWith('file secrets.yaml')).every((c) => c.endsWith('mode 600')), 'the Secret file is owner-only');
      const value = Buffer.from('s3cr3t-relay-value\n').toString('base64');
      t.false(calls.some((c) => c.includes('s3cr3t-relay-value') || c.includes(value)), 'no argv carries the value');
      t.false(GUEST_RECEIVE_COMMAND.includes('s3cr3t'), 'the SSH command line is a constant');
      const copied = (await readdir(files)).sort((a, b) => parseInt(a) - parseInt(b));
      const first = await readFile(join(files, copied[0]!), 'utf8');
      t.true(first.indexOf('kind: Namespace') < first.indexOf('kind: CustomResourceDefinition'));
      t.regex(await readFile(join(files, copied[2]!), 'utf8'), new RegExp(`password: ${Buffer.from('s3cr3t-relay-value\n').toString('base64')}`));
      const changes = summarizeChanges(parseApplyOutput(r.stdout), prepared.known);
      t.deepEqual(changes.map((c) => `${c.change} ${c.object}`), [
        'unchanged CustomResourceDefinition mailboxes.mail.example.test',
        'configured Mailbox alice',
        'created Namespace mailboxes',
        'unchanged Secret default/relay',
      ]);
      t.regex(r.stdout, /^mailbox.mail.example.test\/alice serverside-applied$/m);
      t.deepEqual(await readdir(join(dir, 'guest-tmp')), [], 'the directory with the Secret is gone');
      // A failing apply: the script stops with kubectl's error; the directory still goes.
      const failed = await runInGuest(join(dir, 'again'), payloadFor(entries, join(dir, 'admin.conf')), { FIXTURE_FAIL_OBJECT: 'alice' });
      t.is(failed.r.exitCode, 1);
      t.regex(failed.r.stderr, /Error from server \(Invalid\): error when applying patch: alice is invalid/);
      t.regex(failed.r.stdout, /@@labsmith apply-end objects 1$/m);
      t.notRegex(failed.r.stdout, /source-end/);
      t.deepEqual(await readdir(join(dir, 'again', 'guest-tmp')), []);
    } finally {
      clearSecretValues();
    }
  });
});

test.serial('the guest script renders a kustomization with kubectl kustomize (here Debian\'s kustomize behind the stand-in) and applies the result', async (t) => {
  const tool = await kustomize;
  if (tool instanceof Error) return t.fail(`Debian's kustomize could not be fetched: ${tool.message}`);
  await withTempDir(async (dir) => {
    await mkdir(join(dir, 'guest-tmp'));
    const prepared = await prepareWorkloads(configWith('workloads:\n  - path: kustomize/overlay\n'), { upstream: {}, renderer: async () => ({ unavailable: 'not here' }) });
    const [source] = prepared.plan.sources;
    t.deepEqual(source!.kustomizationRoot, { dir: join(FIXTURES, 'kustomize', 'overlay'), path: '.' });
    const entries = renderApplyPayload({ plan: prepared.plan, script: readFileSync(applyScriptPath(), 'utf8'), diff: false, kustomizations: { [source!.dirName]: await readKustomizationFiles(source!.kustomizationRoot!.dir) } });
    t.true(entries.some((e) => e.path === 'sources/01-overlay/kustomization/kustomization.yaml'));
    // Not rendered on the host, the overlay is shipped as its own directory: its ../base is not there, and the guest says so.
    const { r } = await runInGuest(dir, payloadFor(entries, join(dir, 'admin.conf')));
    t.not(r.exitCode, 0);
    t.regex(r.stderr, /base/);
    // Rendered on the host, the origins name ../base: the tree holding both is shipped, and the guest renders it.
    const withBase = await prepareWorkloads(configWith('workloads:\n  - path: kustomize/overlay\n'), { upstream: {}, renderer: async () => tool }).catch((e: Error) => e);
    // base's deployment has a bad quantity on purpose: fix it in a copy of the tree.
    t.true(withBase instanceof Error);
    const tree = join(dir, 'tree');
    await mkdir(join(tree, 'base'), { recursive: true });
    await mkdir(join(tree, 'overlay'));
    for (const f of ['base/kustomization.yaml', 'base/service.yaml', 'overlay/kustomization.yaml', 'overlay/namespace.yaml']) await writeFile(join(tree, f), readFileSync(join(FIXTURES, 'kustomize', f)));
    await writeFile(join(tree, 'base', 'deployment.yaml'), readFileSync(join(FIXTURES, 'kustomize', 'base', 'deployment.yaml'), 'utf8').replace('lots-of', '64Mi'));
    const good = await prepareWorkloads(configWith('workloads:\n  - path: tree/overlay\n', dir), { upstream: {}, renderer: async () => tool });
    const [g] = good.plan.sources;
    t.deepEqual(g!.kustomizationRoot, { dir: tree, path: 'overlay' });
    const goodEntries = renderApplyPayload({ plan: good.plan, script: readFileSync(applyScriptPath(), 'utf8'), diff: false, kustomizations: { [g!.dirName]: await readKustomizationFiles(g!.kustomizationRoot!.dir) } });
    const rendered = await runInGuest(join(dir, 'tree-run'), payloadFor(goodEntries, join(dir, 'admin.conf')));
    t.is(rendered.r.exitCode, 0, rendered.r.stderr);
    t.regex(rendered.r.stdout, /^namespace\/dns serverside-applied$/m, 'the namespace, first');
    t.regex(rendered.r.stdout, /^deployment.apps\/lab-dns serverside-applied$/m);
    t.regex(rendered.r.stdout, /^service\/lab-dns serverside-applied$/m);
    // A self-contained kustomization renders and applies.
    const self = join(dir, 'self');
    await mkdir(self);
    await writeFile(join(self, 'kustomization.yaml'), 'namespace: web\nnamePrefix: lab-\nresources: [ns.yaml, cm.yaml]\n');
    await writeFile(join(self, 'ns.yaml'), 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: web\n');
    await writeFile(join(self, 'cm.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: "1"\n');
    const selfPlan = await prepareWorkloads({ ...configWith('workloads: []\n'), workloads: [{ name: 'self', path: self, images: [], secrets: [], rolloutTimeoutSeconds: 60 }] }, { upstream: {}, renderer: async () => tool });
    const selfEntries = renderApplyPayload({ plan: selfPlan.plan, script: readFileSync(applyScriptPath(), 'utf8'), diff: false, kustomizations: { '01-self': await readKustomizationFiles(self) } });
    const ok = await runInGuest(join(dir, 'ok'), payloadFor(selfEntries, join(dir, 'admin.conf')));
    t.is(ok.r.exitCode, 0, ok.r.stderr);
    t.regex(ok.r.stdout, /^configmap\/lab-settings serverside-applied$/m);
    t.true(ok.calls.some((c) => /^kubectl kustomize \S+\/sources\/01-self\/kustomization\/\.$/.test(c)), ok.calls.join('\n'));
  });
});

test.serial('a secret value is redacted from progress, both log bundles, the reports, and never in lab:render', async (t) => {
  await withTempDir(async (dir) => {
    const value = 'hunter2-fixture-secret-7f3a';
    await writeFile(join(dir, 'token'), `${value}\n`);
    await mkdir(join(dir, 'app'));
    await writeFile(join(dir, 'app', 'cm.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n');
    const config = configWith('workloads:\n  - path: app\n    secrets:\n      - name: api\n        namespace: default\n        data:\n          token: { file: token }\n', dir);
    try {
      const prepared = await prepareWorkloads(config, { upstream: {}, renderer: async () => ({ unavailable: 'x' }) });
      t.is(prepared.secrets[0]!.data.token!.toString(), `${value}\n`);
      const b64 = Buffer.from(value).toString('base64');
      // Progress and the error printer's writer.
      let printed = '';
      const progress = new Progress('plain', (s) => (printed += s));
      progress.info(`kubectl said: token=${value} data=${b64}`);
      t.is(printed.includes(value) || printed.includes(b64), false);
      t.regex(printed, /token=<redacted:api\/token> data=<redacted:api\/token>/);
      // The failure bundle of lab:up: a console line and the error carry the value.
      const state = join(dir, 'state');
      await mkdir(state);
      await writeFile(join(state, 'serial.log'), `[  12.0] app: starting with ${value}\n`);
      const failed = await saveFailureBundle({ root: join(dir, 'failed'), labName: 'lab', stateDir: state, consoleLog: join(state, 'serial.log'), failure: new LabError(`apply failed: ${b64}`), timings: [] });
      // The acceptance log bundle: the serial console copied in.
      const bundle = await writeLogBundle(join(dir, 'bundle'), { address: '127.0.0.1', ports: {}, caCert: '', tlsName: 'x', cluster: { missing: 'none' }, dnsDomain: 'cluster.local', ingressDomain: 'lab.test', stateDir: state }, [{ id: 'x', description: `saw ${value}`, ok: false, detail: value, reproduce: '', hint: '', attempts: 1, durationMs: 0 } as never], []);
      // lab:render: placeholders only.
      const written = await renderLab(config, join(dir, 'render'), { upstream: {} });
      const everyFile = async (root: string): Promise<string[]> => (await readdir(root, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
      const files = [...(await everyFile(failed)), ...(await everyFile(bundle)), ...(await everyFile(join(dir, 'render')))];
      t.true(files.length >= 6, files.join('\n'));
      t.true(written.some((w) => w.endsWith('workloads/01-app.yaml')));
      for (const f of files) {
        const text = await readFile(f, 'utf8');
        t.false(text.includes(value) || text.includes(b64), `${f} holds the secret`);
      }
      t.regex(await readFile(join(failed, 'serial.log'), 'utf8'), /starting with <redacted:api\/token>/);
      t.regex(await readFile(join(failed, 'steps.log'), 'utf8'), /apply failed: <redacted:api\/token>/);
      t.regex(await readFile(join(bundle, 'failed-checks.txt'), 'utf8'), /saw <redacted:api\/token>/);
      t.regex(await readFile(join(dir, 'render', 'workloads', '01-app.yaml'), 'utf8'), /token: "?<secret api\/token: from file .*token, read at lab:up>/);
    } finally {
      clearSecretValues();
    }
  });
  t.is(redactSecrets('a-value-1 and YS12YWx1ZS0x', [{ label: 'n/k', value: 'a-value-1' }]), '<redacted:n/k> and <redacted:n/k>', 'raw and base64');
});
