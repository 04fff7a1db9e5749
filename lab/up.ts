/**
 * lab:up: a table of contents of named steps. Each has a timeout and a hint; whatever a
 * step made is removed again if a later step fails or the user presses Ctrl-C, unless
 * --retain is given.
 */
import { BOOTSTRAP_UNIT } from '../cloud-init/bootstrap.ts';
import { renderClusterSeed } from '../cloud-init/cluster-seed.ts';
import type { ClusterSeed } from '../cloud-init/user-data.ts';
import { UPSTREAM_MANIFEST_NAMES, type UpstreamTexts } from '../cloud-init/addons/bundle.ts';
import { rewriteKubeconfigServer } from '../cloud-init/addons/kubeconfig.ts';
import { kubernetesVersionOf } from '../images/kubernetes/kubeadm.ts';
import { CLUSTER_READY_CHECKS } from './acceptance/cluster-checks.ts';
import { bootLayer } from '../images/recipe.ts';
import type { ImageSource } from '../images/source.ts';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LabError } from '../core/errors.ts';
import { formatCommand } from '../core/exec.ts';
import { requireHostTools } from '../core/host-tools.ts';
import { BOOTSTRAP_PATHS, cacheRoot, IMAGE_FILES, LAB_FILES } from '../core/paths.ts';
import type { Progress } from '../core/progress.ts';
import { runSteps, type Step, type StepTiming } from '../core/steps.ts';
import { readTar } from '../core/tar.ts';
import { renderSeedFiles, type SeedFiles } from '../cloud-init/user-data.ts';
import { applyForwards, removeForwards } from './forwarding/nft-apply.ts';
import { writeSeedFiles, writeSeedIso } from '../cloud-init/seed-iso.ts';
import { ensureWritableDir } from '../core/fs.ts';
import { buildImage, type BuiltImage } from '../images/build.ts';
import { chooseAccel, probeKvm } from './accel.ts';
import { runChecks, type CheckResult } from './acceptance/check.ts';
import { acceptanceContextFromLab, PLACEHOLDER_TLS_NAME } from './acceptance/context.ts';
import { hostChecksFor } from './acceptance/os-checks.ts';
import type { LabConfig } from '../config/lab-config.ts';
import type { LabDriver } from './drivers/driver.ts';
import { sleep } from '../core/sleep.ts';
import { ensurePortsFree } from './ports.ts';
import { ensureLabCa, ensureSshKey, issueServerCertificate, type LabCa, type SshKeyPair } from './secrets.ts';
import { renderKnownHosts, renderSshArgs, sshRun, type SshTarget } from './ssh.ts';
import { acquireLabLock, readLabState, writeLabState, type LabState } from './state.ts';

export interface LabUpOptions {
  config: LabConfig;
  /** Image cache (default: the user's cache directory). */
  cacheDir?: string;
  driver: LabDriver;
  /** The lock file and the profile (Kubernetes or OS-only) the image is built from. */
  source: ImageSource;
  progress: Progress;
  signal?: AbortSignal;
  retain?: boolean;
}

interface UpContext extends LabUpOptions {
  image?: BuiltImage;
  accel?: 'kvm' | 'tcg';
  seedIso?: string;
  seed?: SeedFiles;
  secrets?: { user: SshKeyPair; host: SshKeyPair; ca: LabCa };
  state?: LabState;
  ssh?: SshTarget;
  checks?: CheckResult[];
}

const MINUTE = 60_000;
export const LAB_HOST_TOOLS = ['qemu-system-x86_64', 'qemu-img', '/usr/share/OVMF/OVMF_CODE_4M.fd', 'xorriso', 'ssh', 'ssh-keygen', 'openssl'];

function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`internal: ${what} missing (an earlier step did not run)`);
  return value;
}

/** TCG is slow: give it more time for the same work. */
const bootBudget = (ctx: UpContext, kvmMs: number) => (ctx.accel === 'kvm' ? kvmMs : kvmMs * 4);

export const LAB_UP_STEPS: Step<UpContext>[] = [
  {
    title: 'Checking host tools',
    timeoutMs: MINUTE,
    run: () => requireHostTools(LAB_HOST_TOOLS),
  },
  {
    title: 'Checking host ports are free',
    timeoutMs: MINUTE,
    run: (ctx) => ensurePortsFree(ctx.config.network.hostAddress, ctx.config.network.forwards),
  },
  {
    title: 'Building or reusing the image',
    timeoutMs: 60 * MINUTE,
    async run(ctx, { signal }) {
      ctx.image = await buildImage({ debian: ctx.config.debian, source: ctx.source, progress: ctx.progress, signal, cacheDir: ctx.cacheDir });
    },
  },
  {
    title: 'Creating lab secrets',
    timeoutMs: MINUTE,
    async run(ctx, { onUndo }) {
      const dir = ctx.config.stateDir;
      // The lock file stays: the caller releases it after cleanup.
      onUndo('lab directory', () => clearLabDir(dir));
      ctx.secrets = {
        user: await ensureSshKey(dir, `labsmith-${ctx.config.name}`, LAB_FILES.sshKey),
        host: await ensureSshKey(dir, `labsmith-${ctx.config.name}-host`, LAB_FILES.hostKey),
        ca: await ensureLabCa(dir, ctx.config.name, { key: LAB_FILES.caKey, cert: LAB_FILES.caCert }),
      };
    },
  },
  {
    title: 'Writing cloud-init seed',
    timeoutMs: MINUTE,
    async run(ctx, { signal }) {
      const dir = ctx.config.stateDir;
      const { user, host, ca } = need(ctx.secrets, 'secrets');
      const cluster = ctx.source.kubernetes ? await clusterSeedFor(ctx, ca) : undefined;
      // The placeholder ingress answers only where no cluster runs; it still gets its certificate so the CA check has one to verify.
      const tls = await issueServerCertificate(ca, dir, 'placeholder-ingress', {
        dnsNames: [PLACEHOLDER_TLS_NAME],
        ipAddresses: [...new Set(['127.0.0.1', ctx.config.network.hostAddress].filter((a) => a !== '0.0.0.0'))],
      });
      await writeFile(join(dir, LAB_FILES.knownHosts), renderKnownHosts(host.publicKey), { mode: 0o600 });
      const files = renderSeedFiles(ctx.config, {
        sshPublicKey: user.publicKey,
        hostKey: { privateKey: await readFile(host.privateKeyPath, 'utf8'), publicKey: host.publicKey },
        caCert: ca.certPem,
        tlsCert: tls.certPem,
        tlsKey: tls.keyPem,
      }, cluster);
      const seedDir = join(dir, LAB_FILES.seedDir);
      ctx.seed = files;
      await writeSeedFiles(seedDir, files);
      ctx.seedIso = join(dir, LAB_FILES.seed);
      await writeSeedIso(seedDir, ctx.seedIso, signal);
    },
  },
  {
    title: 'Choosing KVM or TCG',
    timeoutMs: 2 * MINUTE,
    async run(ctx) {
      const image = need(ctx.image, 'image');
      const probe = ctx.config.vm.accel === 'tcg' ? undefined : await probeKvm(await readImageKernel(image), cacheRoot());
      const choice = chooseAccel(ctx.config.vm.accel, probe);
      if (choice.warning) ctx.progress.warn(choice.warning);
      ctx.accel = choice.accel;
    },
  },
  {
    title: 'Booting the VM',
    timeoutMs: MINUTE,
    hint: 'qemu output is in qemu.log in the lab directory',
    async run(ctx, step) {
      const { config, driver } = ctx;
      const accel = need(ctx.accel, 'accel');
      const image = need(ctx.image, 'image');
      const started = await driver.up({ config, accel, baseImage: image.disk, imageHash: image.plan.disk.hash, seedIso: need(ctx.seedIso, 'seed'), seed: need(ctx.seed, 'seed') }, step);
      ctx.state = {
        name: config.name,
        driver: driver.name,
        accel,
        startedAt: new Date().toISOString(),
        hostAddress: config.network.hostAddress,
        forwards: config.network.forwards,
        sshUser: config.ssh.user,
        imageDir: need(ctx.image, 'image').dir,
        kubernetes: ctx.source.kubernetes,
        dnsDomain: config.kubernetes.dnsDomain,
        ingressDomain: config.addons.ingressDomain,
        ...started,
      };
      await writeLabState(config.stateDir, ctx.state);
      const endpoint = driver.sshEndpoint(ctx.state);
      ctx.ssh = { stateDir: config.stateDir, user: config.ssh.user, ...endpoint };
    },
  },
  {
    title: 'Forwarding host ports',
    timeoutMs: MINUTE,
    hint: 'the forwards are nftables rules in a table named after the lab: nft list table ip labsmith_<name>',
    async run(ctx, { onUndo }) {
      const state = need(ctx.state, 'state');
      // qemu forwards ports itself; NAT-networked drivers get an nftables table per lab.
      if (ctx.driver.capabilities.forwardsPortsItself) return;
      const vmAddress = ctx.driver.address(state);
      if (!vmAddress || ctx.config.libvirt.networkMode === 'bridge') return ctx.progress.info('the VM has its own address on the bridge: no host forwarding');
      onUndo('host port forwarding', () => removeForwards(ctx.config.name));
      await applyForwards({ labName: ctx.config.name, listenAddress: ctx.config.network.hostAddress, vmAddress, forwards: ctx.config.network.forwards }, { outboundInterface: ctx.driver.hostInterface?.(state) });
      ctx.state = { ...state, forwarding: true };
      await writeLabState(ctx.config.stateDir, ctx.state);
    },
  },
  {
    title: 'Waiting for SSH',
    timeoutMs: 15 * MINUTE,
    async run(ctx, { signal }) {
      await waitForSsh(ctx, signal, bootBudget(ctx, 3 * MINUTE));
    },
  },
  {
    title: 'Waiting for cloud-init',
    timeoutMs: 20 * MINUTE,
    hint: 'see /var/log/cloud-init-output.log in the VM: npm run lab:ssh -- sudo cat /var/log/cloud-init-output.log (add --retain to keep a failed lab)',
    async run(ctx, { signal }) {
      await waitForCloudInit(ctx, signal, bootBudget(ctx, 4 * MINUTE));
    },
  },
  {
    title: 'Waiting for the cluster bootstrap',
    timeoutMs: 60 * MINUTE,
    skip: (ctx) => !ctx.source.kubernetes,
    hint: 'the bootstrap log: npm run lab:ssh -- journalctl -u labsmith-bootstrap (add --retain to keep a failed lab)',
    async run(ctx, { signal, progress }) {
      await waitForBootstrap(ctx, signal, progress, bootBudget(ctx, 12 * MINUTE));
    },
  },
  {
    title: 'Fetching the kubeconfig',
    timeoutMs: 2 * MINUTE,
    skip: (ctx) => !ctx.source.kubernetes,
    async run(ctx, { signal }) {
      const state = need(ctx.state, 'state');
      const r = await sshRun(need(ctx.ssh, 'ssh'), ['sudo', 'cat', BOOTSTRAP_PATHS.adminKubeconfig], { signal });
      await writeFile(join(ctx.config.stateDir, LAB_FILES.kubeconfig), rewriteKubeconfigServer(r.stdout, apiServerUrl(ctx, state)), { mode: 0o600 });
    },
  },
  {
    title: 'Checking the cluster is usable',
    timeoutMs: 20 * MINUTE,
    skip: (ctx) => !ctx.source.kubernetes,
    hint: 'the failing check says what it saw; `npm run test:e2e` runs the whole suite',
    async run(ctx) {
      const state = need(ctx.state, 'state');
      const actx = await acceptanceContextFromLab(state, ctx.config.stateDir, ctx.driver.sshEndpoint(state));
      const results = await runChecks(CLUSTER_READY_CHECKS, actx, () => undefined);
      const failed = results.filter((c) => !c.ok);
      if (failed.length) throw new LabError(`the cluster is not usable:\n${failed.map((c) => `  ✗ ${c.description}: ${c.detail}\n    try: ${c.reproduce}`).join('\n')}`, failed[0]!.hint);
      ctx.checks = results;
    },
  },
  {
    title: 'Running checks',
    timeoutMs: 10 * MINUTE,
    hint: 'the failing check above says what it saw and how to reproduce it',
    async run(ctx) {
      const state = need(ctx.state, 'state');
      const actx = await acceptanceContextFromLab(state, ctx.config.stateDir, ctx.driver.sshEndpoint(state));
      const lines: string[] = [];
      ctx.checks = [...(ctx.checks ?? []), ...(await runChecks(hostChecksFor(Boolean(state.kubernetes)), actx, (l) => lines.push(l)))];
      const failed = ctx.checks.filter((c) => !c.ok);
      if (failed.length) throw new LabError(`${failed.length} check(s) failed:\n${failed.map((c) => `  ✗ ${c.description}: ${c.detail}\n    try: ${c.reproduce}`).join('\n')}`, failed[0]!.hint);
    },
  },
];

async function waitForSsh(ctx: UpContext, signal: AbortSignal, budgetMs: number): Promise<void> {
  const ssh = need(ctx.ssh, 'ssh');
  const state = need(ctx.state, 'state');
  const deadline = Date.now() + budgetMs;
  let last = '';
  while (Date.now() < deadline) {
    const status = await ctx.driver.status(state, ctx.config.stateDir);
    if (!status.running) {
      throw new LabError(`the VM stopped while booting:\n${await tailFile(ctx.driver.consoleLog(ctx.config.stateDir, ctx.config.name))}`, 'the lines above are the end of its serial console');
    }
    const r = await sshRun(ssh, ['true'], { signal, allowFailure: true, connectTimeoutSeconds: 5, timeoutMs: 20_000 });
    if (r.exitCode === 0) return;
    last = r.stderr.trim().split('\n').pop() ?? '';
    await sleep(2000, signal);
  }
  throw new LabError(
    `no SSH after ${Math.round(budgetMs / 1000)}s (last: ${last}); end of the serial console:\n${await tailFile(ctx.driver.consoleLog(ctx.config.stateDir, ctx.config.name))}`,
    'rerun with --retain and read serial.log in the lab directory',
  );
}

/** Through the host forward when there is one; a bridged VM is reached on its own address. */
function apiServerUrl(ctx: UpContext, state: LabState): string {
  const apiserver = state.forwards.find((f) => f.name === 'apiserver');
  const vmAddress = ctx.driver.capabilities.forwardsPortsItself ? undefined : ctx.driver.address(state);
  if (vmAddress && ctx.config.libvirt.networkMode === 'bridge') return `https://${vmAddress}:6443`;
  if (apiserver) return `https://${state.hostAddress === '0.0.0.0' ? '127.0.0.1' : state.hostAddress}:${apiserver.host}`;
  return `https://${vmAddress ?? '127.0.0.1'}:6443`;
}

/** The cluster part of the seed: add-ons rendered from lab.yaml and the locked upstream manifests. */
async function clusterSeedFor(ctx: UpContext, ca: LabCa): Promise<ClusterSeed> {
  const image = need(ctx.image, 'image');
  const manifests = need(image.resolved, 'the locked manifests').manifests;
  const upstream = Object.fromEntries(await Promise.all(UPSTREAM_MANIFEST_NAMES.map(async (n) => [n, await readFile(manifests[n]!, 'utf8')] as const))) as UpstreamTexts;
  const lock = ctx.source.lock;
  return renderClusterSeed(ctx.config, {
    kubernetesVersion: kubernetesVersionOf(lock.kubernetes.packages.kubeadm!.version),
    lockedImages: Object.keys(lock.images),
    upstream,
    ca: { certPem: ca.certPem, keyPem: await readFile(ca.keyPath, 'utf8') },
  });
}

/** Follows the bootstrap unit: prints its new log lines as they come, stops when it completes or fails. */
async function waitForBootstrap(ctx: UpContext, signal: AbortSignal, progress: Progress, budgetMs: number): Promise<void> {
  const ssh = need(ctx.ssh, 'ssh');
  const deadline = Date.now() + budgetMs;
  let shown = 0;
  for (;;) {
    const script = `sudo journalctl -u ${BOOTSTRAP_UNIT} -o cat --no-pager; echo "@state=$(systemctl is-active ${BOOTSTRAP_UNIT}) complete=$(test -e ${BOOTSTRAP_PATHS.complete} && echo yes || echo no)"`;
    const r = await sshRun(ssh, ['sh', '-c', script], { signal, allowFailure: true, timeoutMs: 60_000 });
    const lines = r.stdout.trimEnd().split('\n');
    const status = lines.pop() ?? '';
    const log = lines.filter((l) => l.startsWith('labsmith-bootstrap:'));
    for (const line of log.slice(shown)) progress.info(line.replace(/^labsmith-bootstrap: /, ''));
    shown = Math.max(shown, log.length);
    if (/complete=yes/.test(status)) return;
    if (/@state=failed/.test(status)) {
      throw new LabError(
        `the cluster bootstrap failed; its last lines:\n${lines.slice(-15).map((l) => `    ${l}`).join('\n')}`,
        'fix the cause, then rerun it in the VM: sudo systemctl restart labsmith-bootstrap (it resumes after the last finished step)',
      );
    }
    if (Date.now() > deadline) throw new LabError(`the cluster bootstrap is not done after ${Math.round(budgetMs / 1000)}s (${status.replace('@', '')})`, 'see its log: npm run lab:ssh -- journalctl -u labsmith-bootstrap');
    await sleep(5000, signal);
  }
}

/** cloud-init restarts sshd when it installs host keys, so a dropped connection (ssh's 255) is retried. */
async function waitForCloudInit(ctx: UpContext, signal: AbortSignal, budgetMs: number): Promise<void> {
  const ssh = need(ctx.ssh, 'ssh');
  const deadline = Date.now() + budgetMs;
  for (;;) {
    const r = await sshRun(ssh, ['cloud-init', 'status', '--wait'], { signal, allowFailure: true, timeoutMs: Math.max(1000, deadline - Date.now()) });
    // 0: done, 2: done with recoverable errors (the checks report them); 1: failed.
    if (r.exitCode === 0 || r.exitCode === 2) return;
    if (r.exitCode !== 255 || Date.now() > deadline) {
      const why = r.timedOut ? `not done after ${Math.round(budgetMs / 1000)}s` : `status exit ${r.exitCode}`;
      throw new LabError(`cloud-init did not finish cleanly (${why}): ${(r.stdout || r.stderr).trim().split('\n').pop() ?? ''}`);
    }
    await sleep(2000, signal);
  }
}

async function tailFile(path: string, lines = 15): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '(no console output)');
  return text.trimEnd().split('\n').slice(-lines).map((l) => `    ${l}`).join('\n');
}

/** The kernel the image boots, for the KVM trial boot. */
async function readImageKernel(image: BuiltImage): Promise<Buffer> {
  const tar = join(bootLayer(image.plan).dir, IMAGE_FILES.rootfsTar);
  const entries = await readTar(tar, { readContent: (p) => /^boot\/vmlinuz-/.test(p) });
  const kernel = entries.find((e) => e.content && /^boot\/vmlinuz-/.test(e.path))?.content;
  if (!kernel) throw new LabError(`no kernel in ${tar}`, 'rebuild the image: npm run image:build -- --rebuild');
  return kernel;
}

export interface LabUpResult {
  state: LabState;
  timings: StepTiming[];
  checks: CheckResult[];
  sshCommand: string;
  urls: string[];
}

export async function labUp(opts: LabUpOptions): Promise<LabUpResult> {
  const { config } = opts;
  await ensureWritableDir(config.stateDir, `the lab directory for "${config.name}"`);
  const lock = await acquireLabLock(config.stateDir, config.name);
  try {
    const existing = await readLabState(config.stateDir);
    if (existing) {
      const status = await opts.driver.status(existing, config.stateDir);
      if (status.running) throw new LabError(`lab "${config.name}" is already running (pid ${status.pid})`, 'use it (npm run lab:ssh), or remove it first: npm run lab:down');
      // Left over from a crash: the VM is gone, so its files are stale.
      await opts.driver.down(existing, config.stateDir);
      await clearLabDir(config.stateDir);
    }
    const ctx: UpContext = { ...opts };
    const timings = await runSteps(LAB_UP_STEPS, ctx, { progress: opts.progress, signal: opts.signal, retain: opts.retain });
    const state = need(ctx.state, 'state');
    const ssh = need(ctx.ssh, 'ssh');
    return {
      state,
      timings,
      checks: ctx.checks ?? [],
      sshCommand: formatCommand('ssh', renderSshArgs(ssh, { batch: false })),
      urls: state.forwards.filter((f) => f.name === 'http' || f.name === 'https').map((f) => `${f.name}://${state.hostAddress}:${f.host}/`),
    };
  } finally {
    await lock.release();
    // A failed first lab:up leaves no empty directory behind either.
    if ((await readdir(config.stateDir).catch(() => ['?'])).length === 0) await rm(config.stateDir, { recursive: true, force: true });
  }
}

/** Empties a lab directory except its lock. */
export async function clearLabDir(dir: string): Promise<void> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (name !== LAB_FILES.lock) await rm(join(dir, name), { recursive: true, force: true });
  }
}
