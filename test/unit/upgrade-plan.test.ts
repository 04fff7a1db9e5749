/**
 * lab:upgrade's pure core: facts parsed from recorded command outputs, every pre-check at once,
 * the plan (steps and exact commands), the dry-run print, the suite comparison and the runbook
 * (golden files: test/unit/upgrade-runbook.golden.md, upgrade-plan.golden.txt; UPDATE_GOLDEN=1 rewrites).
 */
import test from 'ava';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import type { TapReport } from '../../lab/acceptance/report.ts';
import { compareCanaries, compareSuiteRuns, parseCanarySums } from '../../lab/upgrade/compare.ts';
import { parseDeprecatedApiRequests, parseDfAvail, parseDpkgVersions, parseNodeFacts, renderFactCommands, stagedPayloadFiles, type NodeFacts } from '../../lab/upgrade/facts.ts';
import { checkKubeadmConfig, checkKubeletFlags } from '../../lab/upgrade/kubeadm-removals.ts';
import { artifactsPayloadNames, payloadFiles, planUpgrade, renderUpgradePlan, runUpgradePrechecks } from '../../lab/upgrade/plan.ts';
import { renderRunbook } from '../../lab/upgrade/runbook.ts';
import { facts, IMG, inputs, ok, RECORDED, TARGET } from '../fixtures/upgrade-facts.ts';

test('facts from recorded outputs: versions, containerd images, disk, cluster, deprecated-API requests, the volume dirs under storageDir', (t) => {
  const f = facts();
  t.is(f.packages.containerd, '1.7.24~ds1-6+b4');
  t.is(f.containerdImages[0]!.labels['io.cri-containerd.pinned'], 'pinned');
  t.deepEqual(f.freeBytes, { '/': 16106127360 });
  if ('missing' in f.cluster) return t.fail(f.cluster.missing);
  t.is(f.cluster.serverVersion, 'v1.37.2');
  t.is(f.cluster.nodeName, 'lab');
  t.deepEqual(f.cluster.volumeDirs, ['/var/lib/labsmith/volumes/default/data', '/var/lib/labsmith/volumes/mail/spool']);
  t.deepEqual(parseDeprecatedApiRequests(RECORDED.metrics.stdout), [{ group: 'flowcontrol.apiserver.k8s.io', version: 'v1beta3', resource: 'flowschemas', removedRelease: '1.32' }]);
  t.deepEqual(parseDpkgVersions('kubeadm 1.37.2-1.1 installed\nfoo 1.0 config-files\n'), { kubeadm: '1.37.2-1.1' });
  t.deepEqual(parseDfAvail('Mounted on Avail\n/ 10\n/var 20\n'), { '/': 10, '/var': 20 });
  t.true(renderFactCommands({ mounts: ['/'] }).serverVersion!.includes('/etc/kubernetes/admin.conf'));
  t.deepEqual(stagedPayloadFiles(f, '1.38'), { 'debs/kubeadm_1.38.1-1.1_amd64.deb': 12000000, 'images/registry.k8s.io_pause_3.10.1.oci.tar': 320000, 'target.json': 2000 });
  t.is(stagedPayloadFiles(f, '1.39'), undefined, 'no payload staged for another minor');
});

test('a lab with no cluster (OS-only, or an API server that does not answer) is named as such', (t) => {
  const osOnly = parseNodeFacts({ ...RECORDED, packages: ok('containerd 1.7.24~ds1-6+b4 installed\n') }, '/v');
  t.deepEqual(osOnly.cluster, { missing: 'kubeadm is not installed: an OS-only lab has no cluster to upgrade' });
  const down = parseNodeFacts({ ...RECORDED, serverVersion: { exitCode: 1, stdout: '', stderr: 'The connection to the server 10.0.2.15:6443 was refused - did you specify the right host or port?\n' } }, '/v');
  t.regex((down.cluster as { missing: string }).missing, /did not answer kubectl version \(The connection to the server .* was refused/);
  const problems = runUpgradePrechecks(inputs({ facts: osOnly }));
  t.is(problems[0]!.check, 'cluster');
  t.regex(problems[0]!.message, /lab lab has no cluster to upgrade/);
});

test('every pre-check reports at once: skew, removed APIs in the user\'s manifests, kubeadm config, inputs, payload, disk', (t) => {
  const f = facts();
  const cluster = f.cluster as Exclude<NodeFacts['cluster'], { missing: string }>;
  const bad = inputs({
    targetMinor: '1.39',
    facts: { ...f, freeBytes: { '/': 1024 }, cluster: { ...cluster, clusterConfiguration: 'apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\napiServer:\n  extraArgs:\n    insecure-port: "0"\n', kubeletFlags: 'KUBELET_KUBEADM_ARGS="--container-runtime=remote"' } },
    workloadManifests: [{ path: 'workloads/app/cron.yaml', text: 'apiVersion: batch/v1beta1\nkind: CronJob\nmetadata: {name: x}\n' }],
  });
  const problems = runUpgradePrechecks(bad);
  const kinds = problems.map((p) => p.check);
  t.true(kinds.includes('version-skew'), 'v1.37.2 → 1.39 skips a minor');
  t.regex(problems.find((p) => p.check === 'version-skew')!.hint, /1\.37 → 1\.38 → 1\.39/);
  t.true(kinds.includes('inputs'), "the lock's target is 1.38, not 1.39");
  t.true(problems.some((p) => /ClusterConfiguration apiVersion: api-version kubeadm\.k8s\.io\/v1beta3 was removed/.test(p.message)));
  t.true(problems.some((p) => /extraArgs is a map \(v1beta3's shape\)/.test(p.message)));
  t.true(problems.some((p) => /apiServer --insecure-port was removed in Kubernetes 1\.24/.test(p.message)));
  t.true(problems.some((p) => /kubelet --container-runtime was removed in Kubernetes 1\.27/.test(p.message)));

  // The user's manifests against the removed-API table (a fixture table row for the target).
  const cron = runUpgradePrechecks(inputs({ targetMinor: '1.38', workloadManifests: [{ path: 'workloads/app/cron.yaml', text: 'apiVersion: batch/v1beta1\nkind: CronJob\nmetadata: {name: x}\n' }] }));
  t.deepEqual(cron, [], 'batch/v1beta1 was removed in 1.25: the 1.37 cluster already refuses it, 1.38 removes nothing in the table');

  const noPayload = runUpgradePrechecks(inputs({ payload: undefined }));
  t.regex(noPayload.map((p) => p.message).join('\n'), /no upgrade payload for 1\.38: the image has none staged/);
  const partial = runUpgradePrechecks(inputs({ payload: { kind: 'artifacts', dir: '/a', files: { 'debs/kubeadm_1.38.1-1.1_amd64.deb': 1 } }, facts: { ...f, freeBytes: { '/': 1 } } }));
  t.true(partial.some((p) => p.message === '--artifacts /a has no images/registry.k8s.io_kube-apiserver_v1.38.1.oci.tar'));
  t.true(partial.some((p) => p.check === 'disk'));
  const noContainerd = runUpgradePrechecks(inputs({ target: { ...TARGET, containerd: undefined } }));
  t.true(noContainerd.some((p) => p.check === 'containerd' && /needs containerd ≥ 2\.0; the node has 1\.7\.24/.test(p.message)));
  t.deepEqual(runUpgradePrechecks(inputs()), [], 'the recorded 1.37 lab with a staged payload passes');
});

test('kubeadm removals: feature gates and fields by table; v1beta4 list extraArgs pass', (t) => {
  const table = [{ kind: 'feature-gate' as const, name: 'OldGate', removedIn: '1.38', replacement: 'nothing', source: 'fixture row' }, { kind: 'field' as const, name: 'dns.type', removedIn: '1.38', replacement: 'remove it', source: 'fixture row' }];
  const cfg = 'apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nfeatureGates: {OldGate: true}\ndns: {type: CoreDNS}\napiServer:\n  extraArgs:\n  - {name: feature-gates, value: "OldGate=true,Other=false"}\n';
  t.deepEqual(checkKubeadmConfig(cfg, '1.38', table).map((p) => p.message), [
    'ClusterConfiguration.apiServer.extraArgs feature-gates: feature-gate OldGate was removed in Kubernetes 1.38',
    'ClusterConfiguration.featureGates: feature-gate OldGate was removed in Kubernetes 1.38',
    'ClusterConfiguration.dns.type: field dns.type was removed in Kubernetes 1.38',
  ]);
  t.deepEqual(checkKubeadmConfig(cfg, '1.37', table), [], 'not yet removed in 1.37');
  t.deepEqual(checkKubeletFlags(RECORDED.kubeletFlags.stdout, '1.38'), []);
});

test('the plan: baseline, rollback point, images, containerd move (1.38 needs 2), control plane, add-ons in support order, after; printed by --dry-run (golden)', async (t) => {
  const plan = planUpgrade(inputs());
  t.deepEqual(plan.steps.map((s) => s.id), ['baseline', 'rollback-point', 'import-images', 'containerd', 'addon-calico', 'kubeadm', 'addon-cert-manager', 'addon-traefik', 'addon-local-path', 'after']);
  t.true(plan.steps.filter((s) => s.id.startsWith('addon-')).every((s) => s.noop), 'the target section keeps every add-on at its version: nothing applied');
  const kubeadm = plan.steps.find((s) => s.id === 'kubeadm')!.commands;
  const order = ['apt-mark unhold kubeadm', 'kubeadm=', 'apt-mark hold kubeadm', 'upgrade plan', 'upgrade diff', 'upgrade apply', 'drain', 'unhold kubelet kubectl', 'kubelet=', 'daemon-reload', 'uncordon', 'condition=Ready'];
  const at = order.map((o) => kubeadm.findIndex((c) => c.includes(o)));
  t.deepEqual([...at].sort((a, b) => a - b), at, `kubeadm's documented order: ${at}`);
  t.false(at.includes(-1));
  t.is(plan.kubernetesVersion, 'v1.38.1');
  t.true(plan.steps.find((s) => s.id === 'baseline')!.commands.some((c) => c.includes('/var/lib/labsmith/volumes/mail/spool/.labsmith-upgrade-canary')));
  const already2 = planUpgrade(inputs({ facts: { ...facts(), containerdVersion: 'containerd github.com/containerd/containerd/v2 2.1.9~ds1 2.1.9~ds1-5' } }));
  t.false(already2.steps.some((s) => s.id === 'containerd'), 'no move when containerd is 2 already');
  await golden(t, 'upgrade-plan.golden.txt', renderUpgradePlan(plan));
});

test('suite comparison check by check: regressions, fixes, checks on one side only, a bail-out after', (t) => {
  const tap = (tests: [string, boolean][], bailout: string | false = false): TapReport => ({ ok: tests.every(([, ok]) => ok), count: tests.length, pass: 0, fail: 0, skip: 0, todo: 0, bailout, tests: tests.map(([name, ok], i) => ({ id: i + 1, name, ok, skip: false, todo: false, durationMs: 1, diag: null })) });
  const before = tap([['node-ready', true], ['tls-served', true], ['egress-https', false], ['logs', true]]);
  const after = tap([['node-ready', true], ['tls-served', false], ['egress-https', true], ['pvc-rw', true]]);
  const c = compareSuiteRuns(before, after);
  t.false(c.ok);
  t.deepEqual(c.regressions, ['tls-served', 'logs']);
  t.deepEqual(c.checks.map((x) => `${x.name}:${x.verdict}`), ['node-ready:same', 'tls-served:regressed', 'egress-https:fixed', 'logs:gone', 'pvc-rw:new']);
  t.true(compareSuiteRuns(before, before).ok);
  t.false(compareSuiteRuns(before, tap([['node-ready', true], ['tls-served', true], ['egress-https', false], ['logs', true]], 'set-up failed')).ok);
  const sums = parseCanarySums(`${'a'.repeat(64)}  /v/default/data/.labsmith-upgrade-canary\n${'b'.repeat(64)}  /v/mail/spool/.labsmith-upgrade-canary\n`, '.labsmith-upgrade-canary');
  t.deepEqual(sums, { '/v/default/data': 'a'.repeat(64), '/v/mail/spool': 'b'.repeat(64) });
  t.deepEqual(compareCanaries(sums, { '/v/default/data': 'a'.repeat(64) }).problems, ['/v/mail/spool: the canary is gone']);
  t.deepEqual(compareCanaries(sums, { ...sums, '/v/default/data': 'c'.repeat(64) }).problems, [`/v/default/data: the canary's sha256 is ${'c'.repeat(64)}, was ${'a'.repeat(64)}`]);
});

test('the production runbook is rendered from the plan and the measurements (golden)', async (t) => {
  const plan = planUpgrade(inputs());
  const md = renderRunbook(plan, {
    rehearsedAt: '2026-12-01T15:00:00.000Z', labName: 'lab', downtimeSeconds: 412,
    stepSeconds: { baseline: 95, 'rollback-point': 140, 'import-images': 33, containerd: 61, 'addon-calico': 0, kubeadm: 211, 'addon-cert-manager': 0, 'addon-traefik': 0, 'addon-local-path': 0, after: 101 },
    comparison: { ok: true, regressions: [], checks: [{ name: 'node-ready', before: 'pass', after: 'pass', verdict: 'same' }, { name: 'egress-https', before: 'fail', after: 'pass', verdict: 'fixed' }] },
    canaries: { ok: true, problems: [], count: 2 },
  });
  t.true(md.includes('| containerd | 2.1.9+ds1-5 | `2dda86ce7033fd612fc50e136679d8174ccad680eb29cd4611e0d2a1b84cf591` |'));
  t.true(md.includes(`| registry.k8s.io/kube-apiserver:v1.38.1 | \`${IMG('2')}\` |`));
  t.true(md.includes('Rehearsal time: 3 min 31 s'));
  await golden(t, 'upgrade-runbook.golden.md', md);
  t.regex(renderRunbook(plan), /Not rehearsed yet/);
});

async function golden(t: { is: (a: string, b: string, m?: string) => void }, name: string, actual: string): Promise<void> {
  const file = new URL(name, import.meta.url);
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) await writeFile(file, actual);
  t.is(actual, await readFile(file, 'utf8'), `${name} (UPDATE_GOLDEN=1 rewrites it)`);
}

test('--artifacts: the resolved target inputs are uploaded under the payload names the plan uses', (t) => {
  const resolved = {
    debs: { 'target/kubeadm': '/a/files/kubeadm.deb', 'target/kubelet': '/a/files/kubelet.deb', 'target/kubectl': '/a/files/kubectl.deb', 'target/containerd': '/a/files/containerd.deb', kubeadm: '/a/files/old-kubeadm.deb' },
    images: { 'target/registry.k8s.io/kube-apiserver:v1.38.1': '/a/images/x.oci.tar', 'target/registry.k8s.io/pause:3.10.1': '/a/images/p.oci.tar' },
  };
  const names = artifactsPayloadNames(TARGET, resolved);
  t.deepEqual(Object.keys(names).sort(), payloadFiles(TARGET));
  t.is(names['debs/kubeadm_1.38.1-1.1_amd64.deb'], '/a/files/kubeadm.deb', "the target's kubeadm, not the image's");
});
