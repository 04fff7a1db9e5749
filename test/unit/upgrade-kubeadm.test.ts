/**
 * kubeadm's upgrade step: the v1beta4 UpgradeConfiguration golden, the params file, and the guest
 * script shellcheck clean and run against STAND-INS for kubeadm, kubectl, apt-get, apt-mark and
 * systemctl (test fixtures that log their calls and fail the way kubeadm's documentation says the
 * real tools fail). No real kubeadm upgrade runs here: pkgs.k8s.io and registry.k8s.io are not
 * reachable from this machine.
 */
import test from 'ava';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { run } from '../../core/exec.ts';
import { kubernetesAptRepoUri, renderUpgradeConfiguration, renderUpgradeStepParams } from '../../lab/upgrade/kubeadm-upgrade.ts';
import { missingCommand, testUnless, withTempDir } from '../helpers.ts';

const SCRIPT = join(import.meta.dirname, '..', '..', 'lab', 'upgrade', 'guest', 'upgrade-control-plane.sh');

test('UpgradeConfiguration v1beta4 golden: target version, imagePullPolicy Never', (t) => {
  const yaml = renderUpgradeConfiguration({ kubernetesVersion: 'v1.38.0' });
  t.is(yaml, `apiVersion: kubeadm.k8s.io/v1beta4
kind: UpgradeConfiguration
apply:
  kubernetesVersion: v1.38.0
  imagePullPolicy: Never
  certificateRenewal: true
  etcdUpgrade: true
plan:
  kubernetesVersion: v1.38.0
diff:
  kubernetesVersion: v1.38.0
node:
  imagePullPolicy: Never
`);
  t.deepEqual(parseYaml(yaml).apply, { kubernetesVersion: 'v1.38.0', imagePullPolicy: 'Never', certificateRenewal: true, etcdUpgrade: true });
});

testUnless(missingCommand('shellcheck'), 'the guest step script is shellcheck clean', async (t) => {
  const r = await run('shellcheck', ['--shell=sh', SCRIPT], { allowFailure: true });
  t.is(r.exitCode, 0, r.stdout);
});

/** Stand-ins (fixtures, not the real tools): each logs its argv; STANDIN_FAIL picks a documented failure mode. */
const STANDINS: Record<string, string> = {
  'apt-get': `echo "apt-get $*" >> "$STANDIN_LOG"`,
  'apt-mark': `echo "apt-mark $*" >> "$STANDIN_LOG"`,
  systemctl: `echo "systemctl $*" >> "$STANDIN_LOG"`,
  kubeadm: `echo "kubeadm $*" >> "$STANDIN_LOG"
case "$1 \${2:-}" in
  "version -o") echo "\${STANDIN_KUBEADM_VERSION:-v1.38.0}"; exit 0 ;;
  "upgrade plan"|"upgrade diff"|"upgrade apply")
    cfg=""; prev=""; for a in "$@"; do [ "$prev" = "--config" ] && cfg=$a; prev=$a; done
    grep -q '^kind: UpgradeConfiguration$' "$cfg" || { echo "unable to read config from \\"$cfg\\"" >&2; exit 1; }
    if [ "$2" = apply ] && [ "\${STANDIN_FAIL:-}" = image-pull ]; then
      grep -q 'imagePullPolicy: Never' "$cfg" || { echo "stand-in: expected imagePullPolicy Never" >&2; exit 3; }
      echo "[preflight] Some fatal errors occurred:" >&2
      echo "	[ERROR ImagePull]: image registry.k8s.io/kube-apiserver:v1.38.0 does not exist and the pull policy is Never" >&2
      echo "error execution phase preflight: [preflight] Some fatal errors occurred" >&2
      exit 1
    fi
    if [ "$2" = plan ] && [ "\${STANDIN_FAIL:-}" = plan-skew ]; then
      echo "[upgrade/version] FATAL: the --version argument is invalid due to these fatal errors: Specified version to upgrade to is at least one minor release higher than the kubeadm minor release" >&2
      exit 1
    fi ;;
esac`,
  kubectl: `echo "kubectl $*" >> "$STANDIN_LOG"
case "$1" in
  drain) [ "\${STANDIN_FAIL:-}" = drain-timeout ] && { echo "error: unable to drain node \\"$2\\" due to error: global timeout reached: $(echo "$*" | sed 's/.*--timeout=//')" >&2; exit 1; } ;;
  wait) [ "\${STANDIN_FAIL:-}" = not-ready ] && { echo "error: timed out waiting for the condition on nodes/lab" >&2; exit 1; } ;;
esac
exit 0`,
};

async function runScript(dir: string, env: Record<string, string> = {}) {
  const bin = join(dir, 'standins');
  await mkdir(bin, { recursive: true });
  for (const [name, body] of Object.entries(STANDINS)) {
    await writeFile(join(bin, name), `#!/bin/sh\n# TEST STAND-IN for ${name}, not the real tool\n${body}\n`);
    await chmod(join(bin, name), 0o755);
  }
  const config = join(dir, 'kubeadm-upgrade.yaml');
  await writeFile(config, renderUpgradeConfiguration({ kubernetesVersion: 'v1.38.0' }));
  const params = join(dir, 'params.env');
  await writeFile(params, renderUpgradeStepParams(
    { targetMinor: '1.38', kubernetesVersion: 'v1.38.0', packageVersion: '1.38.0-1.1', aptRepoUri: kubernetesAptRepoUri('1.38'), nodeName: 'lab', drainTimeout: '120s', readyTimeout: '300s' },
    { config, aptSource: join(dir, 'kubernetes.list'), aptKeyring: '/etc/apt/keyrings/kubernetes apt keyring.gpg' },
  ));
  const log = join(dir, 'calls.log');
  await writeFile(log, '');
  const r = await run(SCRIPT, [params], { allowFailure: true, env: { PATH: `${bin}:/usr/bin:/bin`, STANDIN_LOG: log, KUBECONFIG: join(dir, 'admin.conf'), ...env } });
  return { ...r, calls: (await readFile(log, 'utf8')).trim().split('\n').filter(Boolean), config };
}

const ORDER = [
  'apt-get update -q', 'apt-mark unhold kubeadm', 'apt-get install -y -q kubeadm=1.38.0-1.1', 'apt-mark hold kubeadm', 'kubeadm version -o short',
  'kubeadm upgrade plan --config CFG', 'kubeadm upgrade diff --config CFG', 'kubeadm upgrade apply --config CFG --yes',
  'kubectl drain lab --ignore-daemonsets --delete-emptydir-data --timeout=120s',
  'apt-mark unhold kubelet kubectl', 'apt-get install -y -q kubelet=1.38.0-1.1 kubectl=1.38.0-1.1', 'apt-mark hold kubelet kubectl',
  'systemctl daemon-reload', 'systemctl restart kubelet', 'kubectl uncordon lab', 'kubectl wait --for=condition=Ready node/lab --timeout=300s',
];

testUnless(missingCommand('sh'), 'stand-ins: the happy path runs kubeadm\'s upgrade steps in order and switches the apt source to the target minor', async (t) => {
  await withTempDir(async (dir) => {
    const r = await runScript(dir);
    t.is(r.exitCode, 0, r.stderr);
    t.deepEqual(r.calls.map((c) => c.replaceAll(r.config, 'CFG')), ORDER);
    t.is(await readFile(join(dir, 'kubernetes.list'), 'utf8'), "deb [signed-by=/etc/apt/keyrings/kubernetes apt keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.38/deb/ /\n");
    t.regex(r.stdout, /==> control plane at v1\.38\.0/);
  });
});

testUnless(missingCommand('sh'), 'stand-ins: apply failing on an image pull (policy Never) stops before the drain and the kubelet, naming the image and the fix', async (t) => {
  await withTempDir(async (dir) => {
    const r = await runScript(dir, { STANDIN_FAIL: 'image-pull' });
    t.is(r.exitCode, 1);
    t.regex(r.stderr, /kube-apiserver:v1\.38\.0 does not exist and the pull policy is Never/);
    t.regex(r.stderr, /hint: imagePullPolicy is Never: every image .* must be in containerd's k8s\.io namespace/);
    t.is(r.calls.at(-1)!.replaceAll(r.config, 'CFG'), 'kubeadm upgrade apply --config CFG --yes');
    t.false(r.calls.some((c) => c.startsWith('kubectl') || c.startsWith('systemctl')), 'nothing after the failed apply ran');
  });
});

testUnless(missingCommand('sh'), 'stand-ins: a plan refusal stops before anything changes; a wrong kubeadm version is caught', async (t) => {
  await withTempDir(async (dir) => {
    const plan = await runScript(dir, { STANDIN_FAIL: 'plan-skew' });
    t.is(plan.exitCode, 1);
    t.regex(plan.stderr, /kubeadm upgrade plan refused the upgrade\nhint: read its output above; nothing has changed yet/);
    t.false(plan.calls.some((c) => c.includes('upgrade apply')));
  });
  await withTempDir(async (dir) => {
    const wrong = await runScript(dir, { STANDIN_KUBEADM_VERSION: 'v1.37.4' });
    t.is(wrong.exitCode, 1);
    t.regex(wrong.stderr, /kubeadm reports v1\.37\.4, expected v1\.38\.0/);
  });
});

testUnless(missingCommand('sh'), 'stand-ins: a drain timeout on the single node is a warning; a node that never gets Ready fails with a hint', async (t) => {
  await withTempDir(async (dir) => {
    const drain = await runScript(dir, { STANDIN_FAIL: 'drain-timeout' });
    t.is(drain.exitCode, 0, drain.stderr);
    t.regex(drain.stderr, /warning: drain of lab did not finish within 120s \(single node: continuing\)/);
    t.true(drain.calls.includes('systemctl restart kubelet'));
  });
  await withTempDir(async (dir) => {
    const ready = await runScript(dir, { STANDIN_FAIL: 'not-ready' });
    t.is(ready.exitCode, 1);
    t.regex(ready.stderr, /lab is not Ready after 300s\nhint: journalctl -u kubelet/);
  });
});
