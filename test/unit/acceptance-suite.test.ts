/**
 * The acceptance suite's frame against an API server stand-in (test/fixtures/k8s/api-server.ts):
 * the health checks load without the suite, Ctrl-C stops the check in progress before teardown,
 * a set-up that fails half-way (or is interrupted) removes what it made, the echo backend lives
 * in Traefik's labsmith-e2e under run-suffixed names and only those objects are deleted (never
 * that namespace), and every reproduce command runs through sh as printed.
 */
import test from 'ava';
import { createSocket } from 'node:dgram';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { run } from '../../core/exec.ts';
import { CancelledError } from '../../core/errors.ts';
import { LAB_FILES } from '../../core/paths.ts';
import { renderTapPoint, type Check } from '../../lab/acceptance/check.ts';
import { CLUSTER_READY_CHECKS, hostChecksFor } from '../../lab/acceptance/checks/health.ts';
import { SetUpError, setUpSuite, tearDownSuite, type ClusterCheckContext, type SuiteEnv } from '../../lab/acceptance/cluster/env.ts';
import { ACCEPTANCE_INGRESS_NAMESPACE } from '../../cloud-init/addons/bundle.ts';
import { connectCommand } from '../../lab/acceptance/cluster/objects.ts';
import type { AcceptanceContext } from '../../lab/acceptance/context.ts';
import { parseTap } from '../../lab/acceptance/report.ts';
import { CLUSTER_CHECKS, runAcceptanceSuite } from '../../lab/acceptance/suite.ts';
import type { KubeObject } from '../../lab/kube/client.ts';
import { readyPodsForDeployments, SEEDED_INGRESS_NAMESPACE_PATH, seedCluster, startApiStandIn, type ApiStandIn } from '../fixtures/k8s/api-server.ts';
import { missingCommand, notRoot, testUnless, withTempDir } from '../helpers.ts';

const node = async () => JSON.parse(await readFile('test/fixtures/k8s/node-ready.json', 'utf8')) as KubeObject;

/** The modules a file loads at run time (type-only imports are erased), followed transitively within the repo. */
function runtimeImports(entry: string): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = ts.createSourceFile(file, ts.sys.readFile(file) ?? '', ts.ScriptTarget.ES2022);
    for (const statement of source.statements) {
      let spec: string | undefined;
      if (ts.isImportDeclaration(statement)) {
        const clause = statement.importClause;
        const typeOnly = clause?.isTypeOnly || (clause && !clause.name && clause.namedBindings && ts.isNamedImports(clause.namedBindings) && clause.namedBindings.elements.every((e) => e.isTypeOnly));
        if (!typeOnly) spec = (statement.moduleSpecifier as ts.StringLiteral).text;
      } else if (ts.isExportDeclaration(statement) && statement.moduleSpecifier && !statement.isTypeOnly) {
        spec = (statement.moduleSpecifier as ts.StringLiteral).text;
      }
      if (spec?.startsWith('.')) visit(resolve(dirname(file), spec));
    }
  };
  visit(resolve(entry));
  return new Set([...seen].map((f) => relative(process.cwd(), f)));
}

test("lab:up's health checks load without the suite: no set-up, egress, reports or bundle", (t) => {
  const loaded = runtimeImports('lab/acceptance/checks/health.ts');
  const forbidden = ['lab/acceptance/suite.ts', 'lab/acceptance/checks/egress.ts', 'lab/acceptance/report.ts', 'lab/acceptance/cluster/bundle.ts', 'lab/acceptance/cluster/env.ts', 'lab/acceptance/cluster/host-side.ts', 'lab/acceptance/cluster/pods.ts'];
  for (const f of forbidden) t.false(loaded.has(f), `health.ts loads ${f}`);
  t.true(loaded.has('lab/acceptance/checks/placeholder.ts'), 'the walk follows imports');
  // The suite itself does reach them: the walk can see what it forbids.
  const suite = runtimeImports('lab/acceptance/suite.ts');
  for (const f of forbidden.filter((f) => f !== 'lab/acceptance/suite.ts')) t.true(suite.has(f), f);
});

async function withStandIn(fn: (api: ApiStandIn, dir: string) => Promise<void>): Promise<void> {
  await withTempDir(async (dir) => {
    const api = await startApiStandIn(dir);
    seedCluster(api.objects, await node());
    api.onApply = readyPodsForDeployments;
    try {
      await fn(api, dir);
    } finally {
      await api.close();
    }
  });
}

/** What the suite made: everything named labsmith-e2e… except the namespace the bootstrap made. */
const suiteObjects = (api: ApiStandIn) => [...api.objects.keys()].filter((k) => k.includes('labsmith-e2e') && k !== SEEDED_INGRESS_NAMESPACE_PATH);

/** The bootstrap's labsmith-e2e namespace is still there, and the suite never wrote or deleted it. */
const ingressNamespaceUntouched = (api: ApiStandIn) =>
  api.objects.has(SEEDED_INGRESS_NAMESPACE_PATH) && !api.requests.some((r) => r.method !== 'GET' && r.path.split('?')[0] === SEEDED_INGRESS_NAMESPACE_PATH);

/** The API paths of one run's echo Deployment, Service and Ingress. */
const echoPaths = (runId: string) => [
  `/apis/apps/v1/namespaces/${ACCEPTANCE_INGRESS_NAMESPACE}/deployments/echo-${runId}`,
  `/api/v1/namespaces/${ACCEPTANCE_INGRESS_NAMESPACE}/services/echo-${runId}`,
  `/apis/networking.k8s.io/v1/namespaces/${ACCEPTANCE_INGRESS_NAMESPACE}/ingresses/echo-${runId}`,
];

function contextFor(api: ApiStandIn, over: Partial<AcceptanceContext> = {}): AcceptanceContext {
  return { address: '127.0.0.1', ports: {}, caCert: '', tlsName: 'localhost', cluster: { kube: api.kube, kubeconfig: '/nonexistent/kubeconfig' }, dnsDomain: 'cluster.local', ingressDomain: 'lab.test', ...over };
}

testUnless(missingCommand('openssl'), 'Ctrl-C during a check stops it within a second, and the teardown runs after the check has stopped', async (t) => {
  await withStandIn(async (api, dir) => {
    let abortedAt = 0;
    const controller = new AbortController();
    // The system pods never answer: the check is waiting on the API when Ctrl-C comes.
    api.intercept = ({ method, path }) => {
      if (method === 'GET' && path === '/api/v1/namespaces/kube-system/pods') {
        setTimeout(() => {
          abortedAt = Date.now();
          controller.abort();
        }, 100);
        return 'hang';
      }
      return undefined;
    };
    const error = await t.throwsAsync(runAcceptanceSuite({ ctx: contextFor(api), name: 'stand-in', reportDir: join(dir, 'report'), signal: controller.signal }));
    const endedAfterMs = Date.now() - abortedAt;
    t.true(error instanceof CancelledError, String(error));
    t.true(abortedAt > 0, 'the hanging request was reached');
    const hung = api.requests.find((r) => r.path === '/api/v1/namespaces/kube-system/pods')!;
    // The check stops within a second; the run ends once teardown's deletes (three echo objects, two namespaces) are answered.
    t.true(hung.endedAt! - abortedAt < 1000, `the check stopped ${hung.endedAt! - abortedAt}ms after the abort`);
    t.log(`check stopped ${hung.endedAt! - abortedAt}ms, run ended ${endedAfterMs}ms after the abort`);
    t.true(endedAfterMs < 5000, `the run, teardown included, ended ${endedAfterMs}ms after the abort`);
    const deletes = api.requests.filter((r) => r.method === 'DELETE');
    const namespaces = deletes.map((d) => d.path).filter((p) => /^\/api\/v1\/namespaces\/[^/]+$/.test(p));
    for (const p of namespaces) t.regex(p, /\/labsmith-e2e-[0-9a-f]{6}(-egress)?$/, 'only run namespaces are deleted');
    t.is(namespaces.length, 2, 'both run namespaces deleted');
    const runId = namespaces[0]!.split('/').pop()!.split('-')[2]!;
    t.deepEqual(deletes.map((d) => d.path).filter((p) => !namespaces.includes(p)).sort(), echoPaths(runId).sort(), 'the echo objects deleted by name');
    t.true(ingressNamespaceUntouched(api), 'labsmith-e2e neither created nor deleted');
    t.truthy(hung.endedAt, 'the check let go of its request');
    t.true(deletes.every((d) => d.at >= hung.endedAt!), 'teardown started only after the check stopped');
    t.false(api.requests.some((r) => r.method !== 'DELETE' && r.at > deletes[0]!.at), 'nothing of the check ran during teardown');
    t.deepEqual(suiteObjects(api), []);
  });
});

/** A UDP port free right now (the syslog listener's, so the test can see it released). */
async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function udpPortFree(port: number): Promise<boolean> {
  const s = createSocket('udp4');
  const ok = await new Promise<boolean>((r) => {
    s.once('error', () => r(false));
    s.bind(port, '127.0.0.1', () => r(true));
  });
  await new Promise<void>((r) => s.close(() => r())).catch(() => undefined);
  return ok;
}

// One documentation address per test: tests in a file run at the same time.
const TARGET = '203.0.113.78';
const BUSY_TARGET = '203.0.113.79';
const onLo = async (address = TARGET) => (await run('ip', ['-4', '-o', 'addr', 'show', 'dev', 'lo'])).stdout.includes(` ${address}/`);

testUnless(notRoot() ?? missingCommand('ip', 'openssl'), 'a set-up that fails after any of its effects, or is interrupted, removes what it made: namespaces, lo address, listeners, work dir', async (t) => {
  await withStandIn(async (api, dir) => {
    type Failure = { after: string; how: 'throw' | 'abort' } | { request: (m: string, p: string) => boolean };
    const failures: [string, Failure][] = [
      ['after the first namespace', { after: 'namespace labsmith-e2e-', how: 'throw' }],
      ['after the second namespace', { after: '-egress', how: 'throw' }],
      ['applying the echo Deployment', { request: (m, p) => m === 'PATCH' && p.includes('/deployments/') }],
      ['after the echo Service', { after: `Service ${ACCEPTANCE_INGRESS_NAMESPACE}/echo-`, how: 'throw' }],
      ['applying the echo Ingress', { request: (m, p) => m === 'PATCH' && p.includes('/ingresses/') }],
      ['after the echo Ingress', { after: `Ingress ${ACCEPTANCE_INGRESS_NAMESPACE}/echo-`, how: 'throw' }],
      ['waiting for the echo pod', { request: (m, p) => m === 'GET' && p.endsWith('/pods') && !p.includes('kube-system') }],
      ['reading the kube-dns Service', { request: (m, p) => m === 'GET' && p.endsWith('/services/kube-dns') }],
      ['after the work directory', { after: 'work directory', how: 'throw' }],
      ['after the public target (address on lo)', { after: 'public target', how: 'throw' }],
      ['after the syslog listener', { after: 'syslog listener', how: 'throw' }],
      ['Ctrl-C after the second namespace', { after: '-egress', how: 'abort' }],
      ['Ctrl-C after the public target', { after: 'public target', how: 'abort' }],
    ];
    for (const [what, failure] of failures) {
      const port = await freeUdpPort();
      const controller = new AbortController();
      const made: string[] = [];
      let sawTarget = false;
      api.intercept = 'request' in failure ? ({ method, path }) => (failure.request(method, path) ? { status: 500 } : undefined) : undefined;
      const ctx = contextFor(api, { stateDir: join(dir, 'lab'), driver: 'qemu', logTarget: `udp://127.0.0.1:${port}` });
      const error = await t.throwsAsync(
        setUpSuite(ctx, {
          signal: controller.signal,
          publicTarget: { address: TARGET, httpsPort: 0, httpPort: 0 },
          onMade: (m) => {
            made.push(m);
            if (m.startsWith('public target')) sawTarget = true;
            if ('after' in failure && m.includes(failure.after)) {
              if (failure.how === 'abort') controller.abort();
              else throw new Error(`injected failure ${what}`);
            }
          },
        }),
        undefined,
        what,
      );
      t.true(failure && 'how' in failure && failure.how === 'abort' ? error instanceof CancelledError : error instanceof SetUpError, `${what}: ${error?.name} ${error?.message}`);
      if (error instanceof SetUpError) t.deepEqual(error.leftovers, [], what);
      t.true(made.length > 0, `${what}: something was made first`);
      t.deepEqual(suiteObjects(api), [], `${what}: namespaces, echo objects and the echo pod removed`);
      t.true(ingressNamespaceUntouched(api), `${what}: ${ACCEPTANCE_INGRESS_NAMESPACE} kept`);
      if (what.includes('public target')) t.true(sawTarget, `${what}: the target was up`);
      t.false(await onLo(), `${what}: ${TARGET} removed from lo (made: ${made.join('; ')}; error: ${error?.message})`);
      t.true(await udpPortFree(port), `${what}: syslog port released`);
      const workDir = made.find((m) => m.startsWith('work directory '))?.slice('work directory '.length);
      if (workDir) t.deepEqual(await readdir(dirname(workDir)).then((names) => names.filter((n) => n === workDir.split('/').pop())), [], `${what}: work dir removed`);
    }
    // And when nothing fails, the same set-up is complete and teardown is the undo.
    api.intercept = undefined;
    const env = await setUpSuite(contextFor(api, { stateDir: join(dir, 'lab'), driver: 'qemu' }), { publicTarget: { address: TARGET, httpsPort: 0, httpPort: 0 } });
    t.true(await onLo());
    t.is(suiteObjects(api).filter((k) => k.endsWith(`/namespaces/${env.ns.plain}`) || k.endsWith(`/namespaces/${env.ns.egress}`)).length, 2);
    const { tearDownSuite } = await import('../../lab/acceptance/cluster/env.ts');
    t.deepEqual(await tearDownSuite(env), []);
    t.false(await onLo());
    t.deepEqual(suiteObjects(api), []);
    t.true(ingressNamespaceUntouched(api));
  });
});

testUnless(missingCommand('openssl'), 'the echo backend is applied in labsmith-e2e under run-suffixed names; teardown deletes exactly those objects and no labsmith-e2e namespace', async (t) => {
  await withStandIn(async (api) => {
    const made: string[] = [];
    // Two runs at once share labsmith-e2e: neither disturbs the other's echo objects.
    const env = await setUpSuite(contextFor(api), { onMade: (m) => made.push(m) });
    const other = await setUpSuite(contextFor(api));
    t.not(env.runId, other.runId);
    t.is(env.ns.ingress, ACCEPTANCE_INGRESS_NAMESPACE);
    t.deepEqual(env.echo, { namespace: ACCEPTANCE_INGRESS_NAMESPACE, name: `echo-${env.runId}`, labels: { app: 'echo', 'app.kubernetes.io/instance': `echo-${env.runId}` }, labelSelector: `app=echo,app.kubernetes.io/instance=echo-${env.runId}` });
    t.is(env.echoHost, `echo-${env.runId}.lab.test`);
    const applied = api.requests.filter((r) => r.method === 'PATCH').map((r) => r.path.split('?')[0]!);
    for (const path of [...echoPaths(env.runId), ...echoPaths(other.runId)]) t.true(applied.includes(path) && api.objects.has(path), `applied: ${path}`);
    t.false(applied.some((p) => p.includes('/namespaces/') && p.includes('/echo') && !p.includes(`/namespaces/${ACCEPTANCE_INGRESS_NAMESPACE}/`)), 'no echo object in a run namespace');
    t.deepEqual(made.filter((m) => m.includes('echo-')), ['Deployment', 'Service', 'Ingress'].map((k) => `${k} ${ACCEPTANCE_INGRESS_NAMESPACE}/echo-${env.runId}`));
    // The Service IP is read from the run's own Service.
    t.is((api.objects.get(echoPaths(env.runId)[1]!) as unknown as { spec: { clusterIP: string } }).spec.clusterIP, env.echoServiceIp);
    t.not(env.echoServiceIp, other.echoServiceIp);

    const before = api.requests.length;
    t.deepEqual(await tearDownSuite(env), []);
    const deletes = api.requests.slice(before).filter((r) => r.method === 'DELETE').map((r) => r.path);
    t.deepEqual(deletes, [...echoPaths(env.runId)].reverse().concat([`/api/v1/namespaces/${env.ns.egress}`, `/api/v1/namespaces/${env.ns.plain}`]), 'newest first, echo objects by name');
    t.true(ingressNamespaceUntouched(api), `${ACCEPTANCE_INGRESS_NAMESPACE} neither created nor deleted`);
    t.false(suiteObjects(api).some((k) => k.includes(env.runId)), 'nothing of the torn-down run is left, its echo pod included');
    for (const path of echoPaths(other.runId)) t.true(api.objects.has(path), `the other run's ${path} stays`);
    t.true(suiteObjects(api).some((k) => k.includes(`/pods/echo-${other.runId}-`)), "the other run's echo pod stays");
    t.deepEqual(await tearDownSuite(other), []);
    t.deepEqual(suiteObjects(api), []);
    t.true(ingressNamespaceUntouched(api));
  });
});

testUnless(missingCommand('openssl'), 'a cluster without the labsmith-e2e namespace: the set-up says the bootstrap makes it, does not create it, and removes what it made', async (t) => {
  await withStandIn(async (api) => {
    api.objects.delete(SEEDED_INGRESS_NAMESPACE_PATH);
    const error = await t.throwsAsync(setUpSuite(contextFor(api)));
    t.true(error instanceof SetUpError, String(error));
    t.regex(error!.message, /namespace labsmith-e2e is missing: Traefik serves the suite's Ingress only there/);
    t.regex((error as SetUpError).hint ?? '', /50-traefik\.yaml/);
    t.deepEqual((error as SetUpError).leftovers, []);
    t.false(api.objects.has(SEEDED_INGRESS_NAMESPACE_PATH), 'the suite did not create it');
    t.false(api.requests.some((r) => r.method === 'PATCH' && (r.path.split('?')[0] === SEEDED_INGRESS_NAMESPACE_PATH || r.path.includes(`/namespaces/${ACCEPTANCE_INGRESS_NAMESPACE}/`))), 'nothing applied there');
    t.deepEqual(suiteObjects(api), [], 'the run namespaces went again');
  });
});

testUnless(notRoot() ?? missingCommand('ip', 'openssl'), 'a public target that cannot listen takes its lo address away and the set-up carries on without it', async (t) => {
  await withStandIn(async (api, dir) => {
    // One port for both servers: the second listen fails after the address was added.
    const blocker = (await import('node:net')).createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const busy = (blocker.address() as import('node:net').AddressInfo).port;
    blocker.close();
    const env = await setUpSuite(contextFor(api, { stateDir: join(dir, 'lab'), driver: 'qemu' }), { publicTarget: { address: BUSY_TARGET, httpsPort: busy, httpPort: busy } });
    t.regex((env.publicTarget as { missing: string }).missing, /could not start the public target: .*EADDRINUSE/);
    t.false(await onLo(BUSY_TARGET));
    const { tearDownSuite } = await import('../../lab/acceptance/cluster/env.ts');
    t.deepEqual(await tearDownSuite(env), []);
  });
});

/** Stand-ins for the commands reproduce lines call: each records its argv; ssh runs its remote command with sh, as sshd would. */
async function fakeBin(dir: string): Promise<string> {
  const bin = join(dir, 'bin');
  await mkdir(bin);
  const record = `f=$(mktemp "$RECORD_DIR/XXXXXX"); printf '%s\\0' "$(basename "$0")" "$@" > "$f"`;
  for (const name of ['kubectl', 'curl', 'openssl', 'python3', 'cloud-init', 'systemctl', 'cat', 'cut', 'grep', 'true']) await writeFile(join(bin, name), `#!/bin/sh\n${record}\n`);
  await writeFile(join(bin, 'sudo'), `#!/bin/sh\n${record}\necho 10.96.0.10\n`);
  await writeFile(join(bin, 'ssh'), `#!/bin/sh\n${record}\nwhile [ $# -gt 0 ] && [ "$1" != "--" ]; do shift; done\nshift\nexec sh -c "$*"\n`);
  for (const name of await readdir(bin)) await chmod(join(bin, name), 0o755);
  return bin;
}

async function runAsPrinted(bin: string, dir: string, line: string): Promise<{ exitCode: number; stderr: string; calls: string[][] }> {
  const records = join(dir, `rec-${Math.random().toString(36).slice(2)}`);
  await mkdir(records);
  const r = await run('sh', ['-c', line], { allowFailure: true, env: { PATH: `${bin}:/usr/bin:/bin`, RECORD_DIR: records } });
  const calls = await Promise.all((await readdir(records)).map(async (f) => (await readFile(join(records, f), 'utf8')).split('\0').slice(0, -1)));
  return { exitCode: r.exitCode, stderr: r.stderr, calls };
}

test('reproduce commands run through sh as printed and reach each command with the same argv', async (t) => {
  await withTempDir(async (dir) => {
    const bin = await fakeBin(dir);
    const env = {
      runId: 'ab12cd',
      ns: { plain: 'labsmith-e2e-ab12cd', egress: 'labsmith-e2e-ab12cd-egress', ingress: 'labsmith-e2e' },
      echo: { namespace: 'labsmith-e2e', name: 'echo-ab12cd', labels: { app: 'echo', 'app.kubernetes.io/instance': 'echo-ab12cd' }, labelSelector: 'app=echo,app.kubernetes.io/instance=echo-ab12cd' },
      echoHost: 'echo-ab12cd.lab.test',
      echoPod: { name: 'echo-1', ip: '10.42.0.23' },
      echoServiceIp: '10.96.0.50',
      kubeDnsIp: '10.96.0.10',
      kubernetesServiceIp: '10.96.0.1',
      nodeIp: '10.0.2.15',
      hostSide: { address: '10.0.2.2' },
      publicTarget: { address: '198.51.100.10', httpsPort: 443, httpPort: 80, close: async () => undefined },
      syslog: { missing: 'not in this test' },
      workDir: dir,
      undos: [],
    } as unknown as SuiteEnv;
    const ctx: ClusterCheckContext = {
      ssh: { stateDir: join(dir, 'my lab'), user: 'admin', host: '127.0.0.1', port: 2222 },
      address: '127.0.0.1',
      ports: { http: 8080, https: 8443 },
      caCert: '',
      tlsName: 'localhost',
      cluster: { kube: undefined as never, kubeconfig: join(dir, 'my lab', 'kubeconfig') },
      dnsDomain: 'cluster.local',
      ingressDomain: 'lab.test',
      stateDir: join(dir, 'my lab'),
      env,
    };
    const checks = [...hostChecksFor(false), ...CLUSTER_READY_CHECKS, ...CLUSTER_CHECKS] as Check<ClusterCheckContext>[];
    const byId = new Map<string, string[][]>();
    for (const check of checks) {
      const line = check.reproduce(ctx);
      t.notRegex(line, /\b(KUBECONFIG|ECHO_HOST|NAMESPACE|EGRESS_NAMESPACE|TARGET|PORT|KUBE_DNS_IP)\b/, `${check.id}: no placeholder once the suite is set up`);
      const r = await runAsPrinted(bin, dir, line);
      t.not(r.exitCode, 127, `${check.id}: ${r.stderr}`);
      t.notRegex(r.stderr, /syntax error|not found|unexpected|unterminated/i, `${check.id}: ${line}`);
      t.true(r.calls.length > 0, `${check.id}: ran something`);
      for (const call of r.calls.filter((c) => c[0] !== 'ssh')) t.false(call.some((a) => a.includes('\\')), `${check.id}: no stray quoting in ${JSON.stringify(call)}`);
      byId.set(check.id, r.calls);
      // Through the report (TAP YAML, then parsed back) the line is unchanged.
      const parsed = await parseTap(`TAP version 14\n1..1\n${renderTapPoint(1, { id: check.id, description: 'd', ok: false, detail: 'x', attempts: 1, durationMs: 1, hint: 'h', reproduce: line })}\n`);
      t.is(parsed.tests[0]!.diag?.reproduce, line, check.id);
    }
    const call = (id: string, name: string) => byId.get(id)!.find((c) => c[0] === name)!;
    t.deepEqual(call('ingress-404-node-port', 'curl'), ['curl', '-si', '-H', 'Host: unknown.labsmith.invalid', 'http://127.0.0.1:30080/']);
    t.deepEqual(call('kernel-prerequisites', 'cut'), ['cut', '-d ', '-f1', '/proc/modules'], 'the remote script arrives whole');
    t.deepEqual(call('coredns-answers', 'sudo'), ['sudo', 'kubectl', '--kubeconfig', '/etc/kubernetes/admin.conf', '-n', 'kube-system', 'get', 'service', 'kube-dns', '-o', 'jsonpath={.spec.clusterIP}']);
    t.deepEqual(call('coredns-answers', 'python3').slice(2), ['10.96.0.10', 'kubernetes.default.svc.cluster.local']);
    t.deepEqual(call('ssh', 'ssh').slice(0, 3), ['ssh', '-i', join(dir, 'my lab', LAB_FILES.sshKey)], 'a lab directory with a space stays one word');
    t.deepEqual(call('ssh', 'ssh').slice(-3), ['admin@127.0.0.1', '--', "'true'"].slice(0, 2).concat(call('ssh', 'ssh').slice(-1)));
    const connect = call('egress-public-443-dns-https', 'kubectl');
    t.deepEqual(connect.slice(0, 4), ['kubectl', '--kubeconfig', join(dir, 'my lab', 'kubeconfig'), 'run']);
    t.true(connect.includes('--labels=egress-dns=true,egress-https=true'));
    t.deepEqual(connect.slice(connect.indexOf('--') + 1), connectCommand('198.51.100.10', 443).slice(1));
    t.is(connect[connect.indexOf('-n') + 1], 'labsmith-e2e-ab12cd-egress');
    t.true(call('tls-verifies', 'curl').includes('echo-ab12cd.lab.test:8443:127.0.0.1'));
    t.deepEqual(call('logs-forwarded', 'kubectl').slice(-3), ['--', 'echo', 'hello from labsmith']);
  });
});

testUnless(missingCommand('openssl'), 'a failure bundle holds the nodes, pods and events (oldest first) of each namespace, read through the API', async (t) => {
  await withStandIn(async (api, dir) => {
    const events = (JSON.parse(await readFile('test/fixtures/k8s/events-kube-system.json', 'utf8')) as { items: KubeObject[] }).items;
    events.forEach((e, i) => api.objects.set(`/api/v1/namespaces/kube-system/events/e${i}`, e));
    const { writeLogBundle } = await import('../../lab/acceptance/cluster/bundle.ts');
    const failed = [{ id: 'node-ready', description: 'd', ok: false, detail: 'not Ready', attempts: 1, durationMs: 1, hint: 'h', reproduce: 'kubectl get nodes' }];
    const bundle = await writeLogBundle(join(dir, 'bundle'), contextFor(api), failed, ['kube-system']);
    const lines = (await readFile(join(bundle, 'events-kube-system.txt'), 'utf8')).trim().split('\n');
    t.deepEqual(lines.map((l) => l.split(' ')[3]), ['Scheduled:', 'ErrImageNeverPull:', 'FailedCreatePodSandBox:']);
    t.is((JSON.parse(await readFile(join(bundle, 'nodes.json'), 'utf8')) as { metadata: { name: string } }[])[0]!.metadata.name, 'mail');
    t.regex(await readFile(join(bundle, 'failed-checks.txt'), 'utf8'), /✗ node-ready: d\n {2}saw: not Ready\n {2}try: kubectl get nodes/);
  });
});
