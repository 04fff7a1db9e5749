/**
 * The containerd 1.7 → 2.x step of the rehearsal, on a node over SSH: the pinned .debs copied in
 * and checked, installed with an apt preference that holds only containerd at the pinned version,
 * the config replaced by our version 3 file (and `containerd config migrate`'s own result compared
 * with it), containerd restarted, and then what must still hold checked from the node: the config
 * it loaded, the images imported before (still there, still pinned), a container run, and Docker.
 * The guest side is guest/migrate-containerd.sh, one step per SSH call, timed here.
 */
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { LabError } from '../../core/errors.ts';
import { run, shellQuote } from '../../core/exec.ts';
import { sha256File } from '../../core/hash.ts';
import { GUEST_PATHS, REPO_ROOT } from '../../core/paths.ts';
import type { Progress } from '../../core/progress.ts';
import { pauseImageFor } from '../../cloud-init/containerd-config.ts';
import { fileToRemote, remoteRun, type RemoteHost } from '../backup/remote.ts';
import { CNI_BIN_DIR, renderContainerd2Config } from './containerd2-config.ts';
import { parseCtrImages as parseContainerdImages } from './prechecks.ts';

/** Where the step's files go in the guest (root-only). */
export const GUEST_MIGRATION_PATHS = {
  dir: '/var/lib/labsmith/upgrade/containerd',
  debs: '/var/lib/labsmith/upgrade/containerd/debs',
  sums: '/var/lib/labsmith/upgrade/containerd/debs.sha256',
  params: '/var/lib/labsmith/upgrade/containerd/migrate-containerd.env',
  script: '/var/lib/labsmith/upgrade/containerd/migrate-containerd.sh',
  newConfig: '/var/lib/labsmith/upgrade/containerd/config-v3.toml',
  migrateOutput: '/var/lib/labsmith/upgrade/containerd/config-migrate.toml',
  backup: '/var/lib/labsmith/upgrade/containerd/containerd-1.7',
  aptPreferences: '/etc/apt/preferences.d/labsmith-containerd',
} as const;

export const DOCKER_SOCKET = '/run/docker.sock';
export const MIGRATE_SCRIPT_SOURCE = 'lab/upgrade/guest/migrate-containerd.sh';
export const PINNED_LABEL = 'io.cri-containerd.pinned=pinned';
const IMAGES_PLUGIN = 'io.containerd.cri.v1.images';
const RUNTIME_PLUGIN = 'io.containerd.cri.v1.runtime';

export interface DebFacts { file: string; package: string; version: string; sha256: string }

export interface ImageRow { ref: string; digest: string; pinned: boolean; labels: string[] }

export interface StepTiming { step: string; durationMs: number }

export interface ConfigKeys {
  version?: number;
  sandbox?: string;
  defaultRuntime?: string;
  runtimeType?: string;
  systemdCgroup?: boolean;
  cniBinDirs?: string[];
  cniConfDir?: string;
  registryConfigPath?: string;
}

export interface Check { what: string; ok: boolean; detail: string }

export interface DockerState {
  info: { ok: boolean; detail: string };
  components: string;
  run?: { image: string; ok: boolean; output: string; stderr: string };
}

export interface ContainerdMigrationReport {
  before: { containerd: string; packageVersion: string; images: ImageRow[] };
  after: { containerd: string; packageVersion: string; images: ImageRow[] };
  installed: DebFacts[];
  /** The config containerd 2 loaded (`containerd config dump`), key by key, and the checks on it. */
  configDump: { keys: ConfigKeys; checks: Check[]; criPluginsOk: boolean };
  /** `containerd config migrate` of the 1.7 file against our version 3 file: the keys where they differ. */
  migrateComparison: { ours: ConfigKeys; migrate: ConfigKeys; differences: { key: string; ours: unknown; migrate: unknown }[] };
  /** Every image present before is present after with the same digest, and still pinned if it was. */
  imagesKept: Check[];
  /** skipped: no ctrRun given and the sandbox image is not on the node (an OS-only lab). */
  ctrRun: { image?: string; ok: boolean; skipped?: boolean; exitCode: string; output: string; stderr: string };
  docker: { before: DockerState; after: DockerState; verdict: 'works' | 'breaks' | 'absent'; detail: string };
  timings: StepTiming[];
  /** All checks passed. */
  ok: boolean;
}

export interface MigrateContainerdOptions {
  remote: RemoteHost;
  /** Host paths of the pinned .debs (containerd 2 and whatever else the lock pins with it). */
  debs: string[];
  /** The target (e.g. 1.38 or v1.38.0): names the sandbox image the config pins. */
  kubernetesVersion: string;
  progress: Progress;
  signal?: AbortSignal;
  /** The sandbox image to pin (default: kubeadm's pause image for the target minor). */
  pauseImage?: string;
  /** When given, every .deb must be one of these (package, version, sha256), checked on the host before anything is copied. */
  pins?: { package: string; version: string; sha256: string }[];
  /** What `ctr run --rm` starts after the move (default: the sandbox image, `/pause -v`). */
  ctrRun?: { image: string; command: string[] };
  /** An image Docker has (default: none: `docker info` and `docker version` only). */
  dockerImage?: string;
}

// ---- pure: params, parsers, comparisons --------------------------------------------------

const SAFE_WORD = /^[\w@%+=:,./-]+$/;

export function minorOf(version: string): string {
  const m = /^v?(\d+\.\d+)/.exec(version);
  if (!m) throw new LabError(`kubernetesVersion ${version} is not a Kubernetes version`, 'for example 1.38 or v1.38.0');
  return m[1]!;
}

export function renderMigrationParams(p: { debs: DebFacts[]; containerd: DebFacts; ctrRun?: { image: string; command: string[] }; dockerImage?: string; restartTimeoutSeconds?: number }, paths: Record<keyof typeof GUEST_MIGRATION_PATHS, string> = GUEST_MIGRATION_PATHS): string {
  for (const w of [...(p.ctrRun?.command ?? []), ...p.debs.flatMap((d) => [d.package, d.version]), ...(p.dockerImage ? [p.dockerImage] : [])]) {
    if (!SAFE_WORD.test(w)) throw new LabError(`"${w}" cannot be passed to the guest script as one word`, 'package names, versions and the ctr run command are words without spaces or shell characters');
  }
  const values: Record<string, string> = {
    DEB_DIR: paths.debs,
    DEB_SUMS: paths.sums,
    PINS: p.debs.map((d) => `${d.package}=${d.version}`).join(' '),
    CONTAINERD_PACKAGE: p.containerd.package,
    CONTAINERD_VERSION: p.containerd.version,
    APT_PREFERENCES_FILE: paths.aptPreferences,
    CONTAINERD_CONFIG: GUEST_PATHS.containerdConfig,
    NEW_CONFIG: paths.newConfig,
    MIGRATE_OUTPUT: paths.migrateOutput,
    BACKUP_DIR: paths.backup,
    RESTART_TIMEOUT_SECONDS: String(p.restartTimeoutSeconds ?? 120),
    DOCKER_SOCKET: DOCKER_SOCKET,
    CTR_RUN_IMAGE: p.ctrRun?.image ?? '',
    CTR_RUN_COMMAND: (p.ctrRun?.command ?? []).join(' '),
    DOCKER_RUN_IMAGE: p.dockerImage ?? '',
  };
  return `# Written by labsmith: values for migrate-containerd.sh\n${Object.entries(values).map(([k, v]) => `${k}=${shellQuote(v)}`).join('\n')}\n`;
}

/** The sha256sum file for the debs, by file name (pure). */
export function renderDebSums(debs: DebFacts[]): string {
  return debs.map((d) => `${d.sha256}  ${basename(d.file)}\n`).join('');
}

/** `@@name` sections of the script's output (pure). */
export function parseSections(output: string): Record<string, string> {
  const out: Record<string, string> = {};
  let name: string | undefined;
  const lines: string[] = [];
  const flush = () => { if (name !== undefined) out[name] = lines.join('\n').trim(); lines.length = 0; };
  for (const line of output.split('\n')) {
    const m = /^@@(\S+)$/.exec(line);
    if (m) { flush(); name = m[1]; } else if (name !== undefined) lines.push(line);
  }
  flush();
  return out;
}

/** `ctr images ls` (REF TYPE DIGEST SIZE PLATFORMS LABELS; SIZE holds a space) (pure). */
export function parseCtrImages(output: string): ImageRow[] {
  // One parser of `ctr images ls` (the pre-checks'): rows here keep the labels as `key=value` words.
  return parseContainerdImages(output).map((i) => {
    const labels = Object.entries(i.labels).map(([k, v]) => `${k}=${v}`);
    return { ref: i.ref, digest: i.digest, labels, pinned: labels.includes(PINNED_LABEL) };
  });
}

const dig = (t: unknown, ...path: string[]): any => path.reduce<any>((o, k) => (o == null ? undefined : o[k]), t);

/** The keys the kubelet depends on, read from a containerd 2 (version 3) config (pure). */
export function readConfigKeys(toml: string): ConfigKeys {
  let c: Record<string, unknown>;
  try {
    c = parseToml(toml) as Record<string, unknown>;
  } catch (e) {
    throw new LabError(`containerd's config is not TOML (${(e as Error).message.split('\n')[0]}); it begins:\n    ${toml.split('\n').slice(0, 5).join('\n    ')}`, 'containerd config dump / config migrate printed something else than the config');
  }
  const runc = dig(c, 'plugins', RUNTIME_PLUGIN, 'containerd', 'runtimes', 'runc');
  const cni = dig(c, 'plugins', RUNTIME_PLUGIN, 'cni');
  return {
    version: c.version as number | undefined,
    sandbox: dig(c, 'plugins', IMAGES_PLUGIN, 'pinned_images', 'sandbox'),
    defaultRuntime: dig(c, 'plugins', RUNTIME_PLUGIN, 'containerd', 'default_runtime_name'),
    runtimeType: runc?.runtime_type,
    systemdCgroup: runc?.options?.SystemdCgroup,
    cniBinDirs: cni?.bin_dirs ?? (cni?.bin_dir ? [cni.bin_dir] : undefined),
    cniConfDir: cni?.conf_dir,
    registryConfigPath: dig(c, 'plugins', IMAGES_PLUGIN, 'registry', 'config_path'),
  };
}

export function compareConfigKeys(ours: ConfigKeys, migrate: ConfigKeys): { key: string; ours: unknown; migrate: unknown }[] {
  const keys = [...new Set([...Object.keys(ours), ...Object.keys(migrate)])] as (keyof ConfigKeys)[];
  return keys.filter((k) => JSON.stringify(ours[k]) !== JSON.stringify(migrate[k])).map((k) => ({ key: k, ours: ours[k], migrate: migrate[k] }));
}

export function checkConfigDump(keys: ConfigKeys, pluginsLs: string, sandbox: string): { checks: Check[]; criPluginsOk: boolean } {
  const pluginOk = (id: string) => new RegExp(`^io\\.containerd\\.cri\\.v1\\s+${id}\\s+.*\\bok\\b`, 'm').test(pluginsLs);
  const criPluginsOk = pluginOk('images') && pluginOk('runtime');
  const checks: Check[] = [
    { what: 'the loaded config is version 3', ok: keys.version === 3, detail: `version = ${keys.version}` },
    { what: 'the CRI images and runtime plugins loaded (ctr plugins ls: ok)', ok: criPluginsOk, detail: pluginsLs.split('\n').filter((l) => /io\.containerd\.cri\.v1\s/.test(l)).map((l) => l.replace(/\s+/g, ' ')).join('; ') || 'no io.containerd.cri.v1 plugins listed' },
    { what: `the pinned sandbox image is ${sandbox}`, ok: keys.sandbox === sandbox, detail: String(keys.sandbox) },
    { what: 'runc runs with SystemdCgroup = true', ok: keys.systemdCgroup === true && keys.runtimeType === 'io.containerd.runc.v2', detail: `${keys.runtimeType} SystemdCgroup=${keys.systemdCgroup}` },
    { what: `CNI plugins are read from ${CNI_BIN_DIR}`, ok: JSON.stringify(keys.cniBinDirs) === JSON.stringify([CNI_BIN_DIR]), detail: JSON.stringify(keys.cniBinDirs) },
  ];
  return { checks, criPluginsOk };
}

export function checkImagesKept(before: ImageRow[], after: ImageRow[]): Check[] {
  return before.map((b) => {
    const a = after.find((x) => x.ref === b.ref);
    const ok = Boolean(a && a.digest === b.digest && (!b.pinned || a.pinned));
    return { what: `${b.ref} is still present${b.pinned ? ' and pinned' : ''}`, ok, detail: a ? `${a.digest}${a.pinned ? ' pinned' : ' not pinned'}` : 'missing after the move' };
  });
}

/** The Engine API's /info and /version answers (JSON), summarised; anything else is kept as it came. */
export function parseDockerState(s: Record<string, string>, image?: string): DockerState {
  const json = (text: string | undefined): any => { try { return JSON.parse(text ?? ''); } catch { return undefined; } };
  const info = json(s['docker-info']);
  const version = json(s['docker-version']);
  const state: DockerState = {
    info: { ok: s['docker-info.exit'] === '0', detail: info?.ServerVersion ? `${info.ServerVersion} containerd=${info.ContainerdCommit?.ID ?? '?'} driver=${info.Driver}` : [s['docker-info'], s['docker-info.stderr']].filter(Boolean).join('\n') },
    components: Array.isArray(version?.Components) ? version.Components.map((c: { Name: string; Version: string }) => `${c.Name} ${c.Version}`).join('\n') : (s['docker-version'] ?? ''),
  };
  if (image) state.run = { image, ok: s['docker-run.exit'] === '0', output: s['docker-run'] ?? '', stderr: s['docker-run.stderr'] ?? '' };
  return state;
}

export function judgeDocker(before: DockerState, after: DockerState): { verdict: 'works' | 'breaks' | 'absent'; detail: string } {
  if (before.info.detail === 'docker: not installed') return { verdict: 'absent', detail: 'docker is not installed on the node' };
  const works = (d: DockerState) => d.info.ok && (!d.run || d.run.ok);
  const describe = (d: DockerState) => `info ${d.info.ok ? 'ok' : `failed: ${d.info.detail}`}${d.run ? `; run ${d.run.image} ${d.run.ok ? 'ok' : `failed: ${[d.run.output, d.run.stderr].filter(Boolean).join(' ')}`}` : ''}`;
  if (works(after)) return { verdict: 'works', detail: `after: ${describe(after)} (${after.info.detail}; ${after.components.replace(/\n/g, ', ')})` };
  return { verdict: 'breaks', detail: `${works(before) ? '' : 'already broken before the move: '}before: ${describe(before)}; after: ${describe(after)}` };
}

// ---- effects ------------------------------------------------------------------------------

async function readDebFacts(file: string): Promise<DebFacts> {
  const field = async (f: string) => (await run('dpkg-deb', ['-f', file, f], { hint: `${file} must be a Debian package` })).stdout.trim();
  return { file, package: await field('Package'), version: await field('Version'), sha256: await sha256File(file) };
}

export async function migrateContainerdInGuest(opts: MigrateContainerdOptions): Promise<ContainerdMigrationReport> {
  const { remote, progress, signal } = opts;
  const timings: StepTiming[] = [];
  const step = async <T>(title: string, fn: () => Promise<T>): Promise<T> => {
    progress.start(title);
    try {
      const value = await fn();
      timings.push({ step: title, durationMs: progress.end(true) });
      return value;
    } catch (e) {
      timings.push({ step: title, durationMs: progress.end(false) });
      throw e;
    }
  };
  const guest = (argv: string[], timeoutMs = 120_000, input?: string) => remoteRun(remote, argv, { signal, timeoutMs, input });
  const script = async (name: string, timeoutMs = 300_000) => {
    const r = await remoteRun(remote, ['sudo', 'sh', GUEST_MIGRATION_PATHS.script, GUEST_MIGRATION_PATHS.params, name], { signal, timeoutMs, allowFailure: true });
    if (r.exitCode !== 0) {
      const hint = /hint: (.*)/.exec(r.stderr)?.[1];
      throw new LabError(`the containerd migration step "${name}" failed in the guest (exit ${r.exitCode}):\n    ${(r.stderr || r.stdout).trim().split('\n').slice(-12).join('\n    ')}`, hint ?? 'the old config is kept in the guest at ' + GUEST_MIGRATION_PATHS.backup + '; roll back to the snapshot if containerd does not come back');
    }
    return r.stdout;
  };

  const sandbox = opts.pauseImage ?? pauseImageFor(minorOf(opts.kubernetesVersion));
  const ctrRun = opts.ctrRun ?? { image: sandbox, command: ['/pause', '-v'] };

  const debs = await step('Checking the containerd 2 packages', async () => {
    if (!opts.debs.length) throw new LabError('no .deb given for the containerd migration', 'the lock\'s containerd 2 section names the .debs; fetch them first');
    const facts = await Promise.all(opts.debs.map(readDebFacts));
    for (const d of facts) {
      if (opts.pins && !opts.pins.some((p) => p.package === d.package && p.version === d.version && p.sha256 === d.sha256)) {
        throw new LabError(`${d.file} (${d.package} ${d.version}, sha256 ${d.sha256}) is not pinned by the lock`, 'fetch exactly the files the lock pins (version and sha256)');
      }
    }
    for (const p of opts.pins ?? []) {
      if (!facts.some((d) => d.package === p.package && d.version === p.version)) throw new LabError(`the lock pins ${p.package} ${p.version} but no .deb given is that package`, 'pass every pinned .deb');
    }
    return facts;
  });
  const containerd = debs.find((d) => d.package === 'containerd');
  if (!containerd) throw new LabError(`none of ${opts.debs.map((f) => basename(f)).join(', ')} is the containerd package`, 'pass Debian\'s containerd 2 .deb');
  if (!/^2\./.test(containerd.version)) throw new LabError(`${basename(containerd.file)} is containerd ${containerd.version}, not 2.x`, 'the lock\'s containerd 2 section must pin a 2.x package (forky has 2.1.9)');

  const params = renderMigrationParams({ debs, containerd, ctrRun, dockerImage: opts.dockerImage });
  const ourConfig = renderContainerd2Config({ kubernetesVersion: minorOf(opts.kubernetesVersion), pauseImage: sandbox });

  await step('Copying the packages, config and migration script into the guest', async () => {
    const P = GUEST_MIGRATION_PATHS;
    await guest(['sudo', 'rm', '-rf', P.debs]);
    await guest(['sudo', 'install', '-d', '-m', '0700', P.dir, P.debs]);
    for (const d of debs) await fileToRemote(remote, d.file, ['sudo', 'dd', `of=${P.debs}/${basename(d.file)}`, 'bs=1M', 'status=none'], { signal });
    const put = (dest: string, text: string) => guest(['sudo', 'dd', `of=${dest}`, 'status=none'], 60_000, text);
    await put(P.sums, renderDebSums(debs));
    await put(P.params, params);
    await put(P.newConfig, ourConfig);
    await put(P.script, await readFile(join(REPO_ROOT, MIGRATE_SCRIPT_SOURCE), 'utf8'));
  });

  const record = (s: Record<string, string>) => ({ containerd: s['containerd-version'] ?? '', packageVersion: s['package-version'] ?? '', images: parseCtrImages(s.images ?? '') });
  const before = await step('Recording containerd and its images before the move', async () => {
    const s = parseSections(await script('record'));
    if (s['images.exit'] !== '0') throw new LabError(`ctr -n k8s.io images ls failed before the move: ${s['images.stderr']}`, 'containerd must be running before its upgrade: systemctl status containerd');
    return record(s);
  });
  const dockerBefore = await step('Checking Docker before the move', async () => parseDockerState(parseSections(await script('docker')), opts.dockerImage));

  await step(`Verifying ${debs.map((d) => `${d.package} ${d.version}`).join(', ')} in the guest`, () => script('verify-debs'));
  await step(`Installing containerd ${containerd.version} (apt preference: only this package)`, () => script('install', 900_000));
  const migrated = await step('Writing the version 3 config (and containerd config migrate for comparison)', async () => parseSections(await script('configure')).migrated ?? '');
  await step('Restarting containerd', () => script('restart'));

  const checked = await step('Checking the loaded config and the images', async () => parseSections(await script('check')));
  const dumpKeys = readConfigKeys(checked['config-dump'] ?? '');
  const configDump = { keys: dumpKeys, ...checkConfigDump(dumpKeys, checked.plugins ?? '', sandbox) };
  const after = record(checked);
  const imagesKept = checkImagesKept(before.images, after.images);
  const oursKeys = readConfigKeys(ourConfig);
  const migrateKeys = readConfigKeys(migrated);

  let ctr: ContainerdMigrationReport['ctrRun'];
  if (!opts.ctrRun && !before.images.some((i) => i.ref === ctrRun.image)) {
    ctr = { image: ctrRun.image, ok: true, skipped: true, exitCode: 'skipped', output: `${ctrRun.image} is not in k8s.io: nothing to run`, stderr: '' };
  } else {
    const ran = await step(`Running ${ctrRun.image} with ctr run --rm`, async () => parseSections(await script('ctr-run')));
    ctr = { image: ctrRun.image, ok: ran['ctr-run.exit'] === '0', exitCode: ran['ctr-run.exit'] ?? '', output: ran['ctr-run'] ?? '', stderr: ran['ctr-run.stderr'] ?? '' };
  }
  const dockerAfter = await step('Checking Docker against containerd 2', async () => parseDockerState(parseSections(await script('docker')), opts.dockerImage));
  const docker = { before: dockerBefore, after: dockerAfter, ...judgeDocker(dockerBefore, dockerAfter) };

  const versionOk = after.packageVersion === containerd.version && /\b2\.\d+\.\d+/.test(after.containerd);
  const ok = versionOk && configDump.checks.every((c) => c.ok) && imagesKept.every((c) => c.ok) && ctr.ok && docker.verdict !== 'breaks';
  const report: ContainerdMigrationReport = {
    before, after, installed: debs, configDump,
    migrateComparison: { ours: oursKeys, migrate: migrateKeys, differences: compareConfigKeys(oursKeys, migrateKeys) },
    imagesKept, ctrRun: ctr, docker, timings, ok,
  };
  for (const line of renderMigrationSummary(report)) progress.info(line);
  return report;
}

export function renderMigrationSummary(r: ContainerdMigrationReport): string[] {
  return [
    `containerd ${r.before.packageVersion} → ${r.after.packageVersion}`,
    ...r.configDump.checks.map((c) => `${c.ok ? '✓' : '✗'} ${c.what}: ${c.detail}`),
    ...r.imagesKept.map((c) => `${c.ok ? '✓' : '✗'} ${c.what}: ${c.detail}`),
    `${r.ctrRun.ok ? '✓' : '✗'} ctr run --rm ${r.ctrRun.image}: exit ${r.ctrRun.exitCode}: ${(r.ctrRun.ok ? r.ctrRun.output : `${r.ctrRun.output} ${r.ctrRun.stderr}`).trim().split('\n')[0] ?? ''}`,
    `docker: ${r.docker.verdict}: ${r.docker.detail}`,
    r.migrateComparison.differences.length ? `config migrate differs from ours in: ${r.migrateComparison.differences.map((d) => `${d.key} (ours ${JSON.stringify(d.ours)}, migrate ${JSON.stringify(d.migrate)})`).join('; ')}` : 'config migrate of the 1.7 file gives the same kubelet keys as ours',
  ];
}
