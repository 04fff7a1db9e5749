/**
 * lab:up: a table of contents of named steps. Each has a timeout and a hint; whatever a
 * step made is removed again if a later step fails or the user presses Ctrl-C, unless
 * --retain is given. Before that undo, the logs of the failed run are saved where they
 * survive it (failure-bundle.ts). The guest readiness waits are named requirements
 * (requirements.ts) polled by one abortable loop.
 */
import { BOOTSTRAP_UNIT } from '../cloud-init/bootstrap.ts';
import { renderClusterSeed } from '../cloud-init/cluster-seed.ts';
import type { ClusterSeed } from '../cloud-init/user-data.ts';
import { UPSTREAM_MANIFEST_NAMES, type UpstreamTexts } from '../cloud-init/addons/bundle.ts';
import { rewriteKubeconfigServer } from '../cloud-init/addons/kubeconfig.ts';
import { kubernetesVersionOf } from '../images/kubernetes/kubeadm.ts';
import { bootLayer } from '../images/recipe.ts';
import { renderDirectBootCommandLine } from '../images/boot-files.ts';
import type { ImageSource } from '../images/source.ts';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LabError } from '../core/errors.ts';
import { formatCommand } from '../core/exec.ts';
import { requireHostTools } from '../core/host-tools.ts';
import { BOOTSTRAP_PATHS, cacheRoot, IMAGE_FILES, LAB_FILES, stateRoot } from '../core/paths.ts';
import type { Progress } from '../core/progress.ts';
import { runSteps, type Step, type StepTiming } from '../core/steps.ts';
import { CancelledError } from '../core/errors.ts';
import { readTar } from '../core/tar.ts';
import { renderSeedFiles, type SeedFiles } from '../cloud-init/user-data.ts';
import { applyForwards, removeForwards } from './forwarding/nft-apply.ts';
import { writeSeedFiles, writeSeedIso } from '../cloud-init/seed-iso.ts';
import { ensureWritableDir, restrictToOwner } from '../core/fs.ts';
import { buildImage, type BuiltImage } from '../images/build.ts';
import { chooseAccel, probeKvm } from './accel.ts';
import { runChecks, type CheckResult } from './acceptance/check.ts';
import { acceptanceContextFromLab, PLACEHOLDER_TLS_NAME } from './acceptance/context.ts';
import { CLUSTER_READY_CHECKS, hostChecksFor } from './acceptance/checks/health.ts';
import type { LabConfig } from '../config/lab-config.ts';
import type { LabDriver } from './drivers/driver.ts';
import { getDriver } from './drivers/index.ts';
import { saveFailureBundle } from './failure-bundle.ts';
import { waitForRequirement, type Requirement } from './requirements.ts';
import { parseCloudInitStatus, renderCloudInitWaitScript } from './cloud-init-status.ts';
import { ensurePortsFree } from './ports.ts';
import { readRegistryMaterial } from './registries.ts';
import { ensureLabCa, ensureSshKey, issueServerCertificate, labCaScope, placeholderCertificateSans, type LabCa, type SshKeyPair } from './secrets.ts';
import { probeSshWhileBooting, renderKnownHosts, renderSshArgs, sshRun, type SshTarget } from './ssh.ts';
import { acquireLabLock, readLabState, writeLabState, type LabState } from './state.ts';
import { renderConfigChanged, diffConfig } from './existing.ts';
import { KubeClient } from './kube/client.ts';
import { loadKubeconfig } from './kube/kubeconfig.ts';
import { applyWorkloads } from './workloads/apply.ts';
import { prepareWorkloads, type PreparedWorkloads } from './workloads/prepare.ts';
import { cachedAddonManifestsOf } from './workloads/upstream.ts';

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
  /** Where the logs of a failed run are saved (default: failed/ under the state root). */
  failedLogsDir?: string;
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
  /** Where the logs of the failed run went. */
  bundleDir?: string;
  /** The user's workloads, validated and planned before boot. */
  workloads?: PreparedWorkloads;
}

const MINUTE = 60_000;
export const LAB_HOST_TOOLS = ['qemu-system-x86_64', 'qemu-img', 'qemu-io', '/usr/share/OVMF/OVMF_CODE_4M.fd', 'xorriso', 'ssh', 'ssh-keygen', 'openssl'];

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
    title: 'Validating workloads',
    timeoutMs: 10 * MINUTE,
    skip: (ctx) => ctx.config.workloads.length === 0,
    hint: 'each problem names its file:line and field path (or lab.yaml\'s field); nothing has been built or booted',
    async run(ctx, { signal }) {
      if (!ctx.source.kubernetes) return ctx.progress.warn(`workloads: ${ctx.config.workloads.length} source(s) in lab.yaml are not applied: this lab is OS-only (no cluster)`);
      // Before the (long) image build, with the add-on manifests already cached; kinds of one not cached yet are checked after it.
      ctx.workloads = await prepareWorkloads(ctx.config, { upstream: await cachedAddonManifestsOf(ctx.source.lock, ctx.cacheDir), deferUnavailable: true, signal });
      for (const note of ctx.workloads.notes) ctx.progress.warn(note);
    },
  },
  {
    title: 'Building or reusing the image',
    timeoutMs: 60 * MINUTE,
    async run(ctx, { signal }) {
      ctx.image = await buildImage({ debian: ctx.config.debian, source: ctx.source, progress: ctx.progress, signal, cacheDir: ctx.cacheDir });
    },
  },
  {
    title: 'Validating workloads against the add-ons',
    timeoutMs: 10 * MINUTE,
    skip: (ctx) => !ctx.workloads?.deferred,
    hint: 'each problem names its file:line and field path; nothing has booted yet',
    async run(ctx, { signal }) {
      const manifests = need(need(ctx.image, 'image').resolved, 'the locked manifests').manifests;
      const upstream = Object.fromEntries(await Promise.all(UPSTREAM_MANIFEST_NAMES.map(async (n) => [n, await readFile(manifests[n]!, 'utf8')] as const))) as UpstreamTexts;
      ctx.workloads = await prepareWorkloads(ctx.config, { upstream, signal });
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
        ca: await ensureLabCa(dir, labCaScope(ctx.config, PLACEHOLDER_TLS_NAME), { key: LAB_FILES.caKey, cert: LAB_FILES.caCert }),
      };
      await restrictToOwner(dir);
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
      const tls = await issueServerCertificate(ca, dir, 'placeholder-ingress', placeholderCertificateSans(ctx.config, PLACEHOLDER_TLS_NAME));
      await writeFile(join(dir, LAB_FILES.knownHosts), renderKnownHosts(host.publicKey), { mode: 0o600 });
      const files = renderSeedFiles(ctx.config, {
        sshPublicKey: user.publicKey,
        hostKey: { privateKey: await readFile(host.privateKeyPath, 'utf8'), publicKey: host.publicKey },
        caCert: ca.certPem,
        tlsCert: tls.certPem,
        tlsKey: tls.keyPem,
        registries: await readRegistryMaterial(ctx.config.registries),
      }, cluster, { rootPartitionGrown: ctx.driver.capabilities.growsRootPartition });
      const seedDir = join(dir, LAB_FILES.seedDir);
      ctx.seed = files;
      await writeSeedFiles(seedDir, files);
      ctx.seedIso = join(dir, LAB_FILES.seed);
      await writeSeedIso(seedDir, ctx.seedIso, signal);
      await restrictToOwner(dir);
    },
  },
  {
    title: 'Choosing KVM or TCG',
    timeoutMs: 2 * MINUTE,
    async run(ctx, { signal }) {
      const image = need(ctx.image, 'image');
      const probe = ctx.config.vm.accel === 'tcg' ? undefined : await probeKvm(await readImageKernel(image), cacheRoot(), undefined, signal);
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
      // Recorded before the VM exists: a lab:up killed half-way leaves state naming the
      // driver, so the next command cleans up with the right one.
      const planned: LabState = {
        name: config.name,
        driver: driver.name,
        accel,
        startedAt: new Date().toISOString(),
        stateDir: config.stateDir,
        complete: false,
        hostAddress: config.network.hostAddress,
        forwards: config.network.forwards,
        sshUser: config.ssh.user,
        imageDir: image.dir,
        libvirtUri: driver.capabilities.forwardsPortsItself ? undefined : config.libvirt.uri,
        networkMode: driver.capabilities.forwardsPortsItself ? undefined : config.libvirt.networkMode,
        kubernetes: ctx.source.kubernetes,
        dnsDomain: config.kubernetes.dnsDomain,
        ingressDomain: config.addons.ingressDomain,
        config,
      };
      await writeLabState(config.stateDir, planned);
      const direct = config.vm.boot === 'direct' && driver.capabilities.directKernelBoot;
      if (config.vm.boot === 'direct' && !direct) ctx.progress.info(`the ${driver.name} driver boots the image by UEFI (vm.boot: direct is for the qemu driver)`);
      const directBoot = direct ? { kernel: image.kernel, cmdline: renderDirectBootCommandLine(image.plan.rootPartGuid) } : undefined;
      const started = await driver.up({ config, accel, baseImage: image.disk, imageHash: image.plan.disk.hash, seedIso: need(ctx.seedIso, 'seed'), seed: need(ctx.seed, 'seed'), directBoot, cacheDir: ctx.cacheDir ?? cacheRoot() }, step);
      ctx.state = { ...planned, ...started, complete: true };
      await writeLabState(config.stateDir, ctx.state);
      await restrictToOwner(config.stateDir);
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
    run: (ctx, { signal }) => waitForRequirement(SSH_ANSWERS, ctx, signal),
  },
  {
    title: 'Waiting for cloud-init',
    timeoutMs: 20 * MINUTE,
    run: (ctx, { signal }) => waitForRequirement(CLOUD_INIT_DONE, ctx, signal),
  },
  {
    title: 'Waiting for the cluster bootstrap',
    timeoutMs: 60 * MINUTE,
    skip: (ctx) => !ctx.source.kubernetes,
    run: (ctx, { signal, progress }) => waitForRequirement(bootstrapComplete(progress), ctx, signal),
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
    async run(ctx, { signal }) {
      const state = need(ctx.state, 'state');
      const actx = await acceptanceContextFromLab(state, ctx.config.stateDir, ctx.driver.sshEndpoint(state));
      const results = await runChecks(CLUSTER_READY_CHECKS, actx, () => undefined, signal);
      const failed = results.filter((c) => !c.ok);
      if (failed.length) throw new LabError(`the cluster is not usable:\n${failed.map((c) => `  ✗ ${c.description}: ${c.detail}\n    try: ${c.reproduce}`).join('\n')}`, failed[0]!.hint);
      ctx.checks = results;
    },
  },
  {
    title: 'Applying workloads',
    timeoutMs: 60 * MINUTE,
    skip: (ctx) => !ctx.workloads,
    hint: 'fix the manifests, then npm run lab:apply applies them again to this lab (with --retain it stays up)',
    async run(ctx, { signal, progress }) {
      const state = need(ctx.state, 'state');
      const kube = new KubeClient(await loadKubeconfig(join(ctx.config.stateDir, LAB_FILES.kubeconfig)));
      const changes = await applyWorkloads({ prepared: need(ctx.workloads, 'workloads'), ssh: { stateDir: ctx.config.stateDir, user: ctx.config.ssh.user, ...ctx.driver.sshEndpoint(state) }, kube, progress, diff: false, signal });
      progress.info(`workloads applied: ${changes.length} objects`);
    },
  },
  {
    title: 'Running checks',
    timeoutMs: 10 * MINUTE,
    hint: 'the failing check above says what it saw and how to reproduce it',
    async run(ctx, { signal }) {
      const state = need(ctx.state, 'state');
      const actx = await acceptanceContextFromLab(state, ctx.config.stateDir, ctx.driver.sshEndpoint(state));
      const lines: string[] = [];
      ctx.checks = [...(ctx.checks ?? []), ...(await runChecks(hostChecksFor(Boolean(state.kubernetes)), actx, (l) => lines.push(l), signal))];
      const failed = ctx.checks.filter((c) => !c.ok);
      if (failed.length) throw new LabError(`${failed.length} check(s) failed:\n${failed.map((c) => `  ✗ ${c.description}: ${c.detail}\n    try: ${c.reproduce}`).join('\n')}`, failed[0]!.hint);
    },
  },
];

/** The guest answers SSH with its pinned host key; a VM that stopped fails at once with its console. */
const SSH_ANSWERS: Requirement<UpContext> = {
  description: 'SSH answers',
  timeoutMs: (ctx) => bootBudget(ctx, 3 * MINUTE),
  hint: 'the saved logs hold serial.log, the VM\'s console (or rerun with --retain and read it in the lab directory)',
  intervalMs: 500,
  async probe(ctx, signal) {
    const state = need(ctx.state, 'state');
    const status = await ctx.driver.status(state, ctx.config.stateDir);
    if (!status.running) {
      throw new LabError(`the VM stopped while booting:\n${await tailFile(ctx.driver.consoleLog(ctx.config.stateDir, ctx.config.name))}`, 'the lines above are the end of its serial console; qemu\'s own messages are in qemu.log');
    }
    const r = await probeSshWhileBooting(need(ctx.ssh, 'ssh'), { signal, shareConnection: true });
    return r.exitCode === 0 ? { ready: true } : { ready: false, detail: r.stderr.trim().split('\n').pop() || `ssh exit ${r.exitCode}` };
  },
};

/**
 * cloud-init finished: one SSH session waits in the guest (up to a minute, reading the files
 * `cloud-init status` reads). A dropped session (ssh's 255, e.g. sshd restarted) is "not yet"
 * and the next probe opens a new one.
 */
const CLOUD_INIT_DONE: Requirement<UpContext> = {
  description: 'cloud-init finished',
  timeoutMs: (ctx) => bootBudget(ctx, 4 * MINUTE),
  hint: 'see /var/log/cloud-init-output.log in the VM (in the saved logs, or: npm run lab:ssh -- sudo cat /var/log/cloud-init-output.log with --retain)',
  intervalMs: 200,
  async probe(ctx, signal, remainingMs) {
    const waitSeconds = Math.min(60, Math.max(1, Math.floor(remainingMs / 1000) - 5));
    const r = await sshRun(need(ctx.ssh, 'ssh'), ['sh', '-c', renderCloudInitWaitScript(waitSeconds)], { signal, allowFailure: true, timeoutMs: remainingMs });
    if (r.exitCode !== 0) return { ready: false, detail: r.timedOut ? 'still running' : r.exitCode === 255 ? 'the SSH session dropped (sshd restarted)' : `ssh exit ${r.exitCode}` };
    const status = parseCloudInitStatus(r.stdout);
    // Done with only recoverable errors counts (the checks report them); errors, a failed unit or a disabled cloud-init stop here.
    if (status.state === 'done' && status.errors.length === 0) return { ready: true };
    if (status.state === 'running' || status.state === 'unknown') return { ready: false, detail: 'still running' };
    throw new LabError(`cloud-init did not finish cleanly (${status.state}): ${status.errors.join('; ')}`, CLOUD_INIT_DONE.hint);
  },
};

/**
 * The bootstrap unit completed. Each probe is one SSH session that waits in the guest (up to
 * 30s, checking every 500ms) for the unit to complete or fail, then prints the new log lines.
 */
function bootstrapComplete(progress: Progress): Requirement<UpContext> {
  let shown = 0;
  const hint = 'the bootstrap log: npm run lab:ssh -- journalctl -u labsmith-bootstrap (also in the saved logs)';
  return {
    description: 'the cluster bootstrap completed',
    timeoutMs: (ctx) => bootBudget(ctx, 12 * MINUTE),
    hint,
    intervalMs: 500,
    async probe(ctx, signal) {
      const done = `test -e ${BOOTSTRAP_PATHS.complete} || systemctl is-failed -q ${BOOTSTRAP_UNIT}`;
      const script = `i=0; until ${done} || [ "$i" -ge 60 ]; do sleep 0.5; i=$((i+1)); done; sudo journalctl -u ${BOOTSTRAP_UNIT} -o cat --no-pager; echo "@state=$(systemctl is-active ${BOOTSTRAP_UNIT}) complete=$(test -e ${BOOTSTRAP_PATHS.complete} && echo yes || echo no)"`;
      const r = await sshRun(need(ctx.ssh, 'ssh'), ['sh', '-c', script], { signal, allowFailure: true, timeoutMs: 90_000 });
      const lines = r.stdout.trimEnd().split('\n');
      const status = lines.pop() ?? '';
      const log = lines.filter((l) => l.startsWith('labsmith-bootstrap:'));
      for (const line of log.slice(shown)) progress.info(line.replace(/^labsmith-bootstrap: /, ''));
      shown = Math.max(shown, log.length);
      if (/complete=yes/.test(status)) return { ready: true };
      if (/@state=failed/.test(status)) {
        throw new LabError(
          `the cluster bootstrap failed; its last lines:\n${lines.slice(-15).map((l) => `    ${l}`).join('\n')}`,
          'fix the cause, then rerun it in the VM: sudo systemctl restart labsmith-bootstrap (it resumes after the last finished step)',
        );
      }
      return { ready: false, detail: status.replace('@', '') || `ssh exit ${r.exitCode}` };
    },
  };
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
  // 0700 from the first mkdir: the directory holds the lab's keys.
  await ensureWritableDir(config.stateDir, `the lab directory for "${config.name}"`, { mode: 0o700 });
  const lock = await acquireLabLock(config.stateDir, config.name);
  try {
    await clearLeftovers(opts);
    const ctx: UpContext = { ...opts };
    let timings: StepTiming[];
    try {
      timings = await runSteps(LAB_UP_STEPS, ctx, {
        progress: opts.progress,
        signal: opts.signal,
        retain: opts.retain,
        beforeUndo: async (failure, stepTimings) => {
          if (failure instanceof CancelledError) return;
          ctx.bundleDir = await saveFailureBundle({
            root: opts.failedLogsDir ?? join(stateRoot(), 'failed'),
            labName: config.name,
            stateDir: config.stateDir,
            consoleLog: ctx.driver.consoleLog(config.stateDir, config.name),
            failure,
            timings: stepTimings,
            ssh: ctx.ssh,
          });
          opts.progress.warn(`the logs of this failed lab:up are saved in ${ctx.bundleDir}`);
        },
      });
    } catch (error) {
      if (ctx.bundleDir && error instanceof LabError) throw new LabError(`${error.message}\n  logs of the failed run: ${ctx.bundleDir}`, error.hint, error.exitCode);
      throw error;
    }
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

/**
 * What an earlier lab of this directory left, judged by its recorded driver (never by
 * --driver): a running lab is refused; a dead one is cleaned up by the driver that made it.
 */
async function clearLeftovers(opts: LabUpOptions): Promise<void> {
  const { config } = opts;
  const existing = await readLabState(config.stateDir);
  if (!existing) return;
  const recorded = getDriver(existing.driver);
  const status = await recorded.status(existing, config.stateDir);
  if (status.running) {
    const other = recorded.name === opts.driver.name ? '' : ` under the ${recorded.name} driver (this run asked for ${opts.driver.name})`;
    const changed = existing.config ? renderConfigChanged({ stateDir: config.stateDir, configChanges: diffConfig(existing.config, config) }) : undefined;
    throw new LabError(
      `lab "${config.name}" is already running${status.pid ? ` (pid ${status.pid})` : ''}${other}${changed ? `; ${changed}` : ''}`,
      'use it (npm run lab:ssh), or remove it first: npm run lab:down',
    );
  }
  // Left over from a crash: the VM is gone, so its files are stale.
  opts.progress.warn(`removing what an earlier lab:up of "${existing.name}" left (${recorded.name} driver, VM not running)`);
  if (existing.forwarding) await removeForwards(existing.name);
  await recorded.down(existing, config.stateDir);
  await clearLabDir(config.stateDir);
}

/** Empties a lab directory except its lock. */
export async function clearLabDir(dir: string): Promise<void> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (name !== LAB_FILES.lock && !name.startsWith(`${LAB_FILES.lock}.`)) await rm(join(dir, name), { recursive: true, force: true });
  }
}
