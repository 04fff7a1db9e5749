/** Shared test helpers: temp dirs, host facts, and skips that say why. */
import test, { type ExecutionContext } from 'ava';
import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { commandExistsSync } from '../core/exec.ts';
import type { HostFacts } from '../config/validate.ts';
import { readHostFacts } from '../config/host-facts.ts';
import { parseLabConfig } from '../config/load.ts';
import type { LabConfig } from '../config/lab-config.ts';
import { throwawayLabYaml } from '../lab/ports.ts';
import type { ImageInputs } from '../images/recipe.ts';
import { renderSgdiskArgs } from '../images/disk-plan.ts';
import { renderGrubEnvBlock } from '../images/boot-files.ts';
import { run } from '../core/exec.ts';
import { parseUserDataDocument, renderUserDataDocument } from '../cloud-init/user-data.ts';

export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'labsmith-test-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A host with no routes of its own, running as root: the neutral background for config tests. */
export const NEUTRAL_HOST: HostFacts = { isRoot: true, unprivilegedPortStart: 1024, routes: [], addresses: [], kvmDevice: true };

/**
 * Why a test cannot run here. A plain string is a missing prerequisite (root, a host tool, an
 * upstream file): CI must provide it, so under CI=true the test FAILS instead of skipping. A
 * `worldFact` is about the world outside the machine (a registry CI cannot reach, a hypervisor
 * that hangs): it skips, also under CI.
 */
export type SkipReason = string | { world: string };

export const worldFact = (reason: string): SkipReason => ({ world: reason });

export const isCi = (env: NodeJS.ProcessEnv = process.env): boolean => Boolean(env.CI) && !['false', '0'].includes(env.CI!.toLowerCase());

export type SkipDecision = { action: 'run' } | { action: 'skip'; reason: string } | { action: 'fail'; reason: string };

/** What testUnless does with a reason (pure): run, skip saying why, or fail because CI lacks a prerequisite. */
export function skipDecision(reason: SkipReason | undefined, env: NodeJS.ProcessEnv = process.env): SkipDecision {
  if (reason === undefined || reason === '') return { action: 'run' };
  if (typeof reason === 'object') return { action: 'skip', reason: reason.world };
  return isCi(env) ? { action: 'fail', reason } : { action: 'skip', reason };
}

/**
 * Registers the test; or, when `reason` is set, a skipped test whose title carries the reason
 * (printed once on stderr too); or, under CI with a missing prerequisite, a failing one. A skip
 * never hides a failure: the body does not run.
 */
export function testUnless(reason: SkipReason | undefined, title: string, body: (t: ExecutionContext) => Promise<void> | void, opts: { serial?: boolean } = {}): void {
  const decision = skipDecision(reason);
  const register = opts.serial ? test.serial : test;
  if (decision.action === 'skip') {
    process.stderr.write(`skip: ${title}: ${decision.reason}\n`);
    test.skip(`${title} (skipped: ${decision.reason})`, () => undefined);
  } else if (decision.action === 'fail') {
    register(`${title} (prerequisite missing under CI)`, (t) => {
      t.fail(`${decision.reason}: CI must provide this (a CI run that skips its real tests is not green); if no machine can, mark the reason worldFact()`);
    });
  } else {
    register(title, body);
  }
}

export function missingCommand(...commands: string[]): string | undefined {
  for (const c of commands) if (!commandExistsSync(c)) return `${c} is not installed (npm run doctor -- --install)`;
  return undefined;
}

/**
 * Real upstream files the tests read (Calico, cert-manager CRDs, local-path, provider docs), kept
 * outside the repo: LABSMITH_UPSTREAM_DIR, else ../shared/upstream beside the checkout, else
 * /work/shared/upstream (where worktrees find it).
 */
export const UPSTREAM_DIR = process.env.LABSMITH_UPSTREAM_DIR ?? [resolve('..', 'shared', 'upstream'), '/work/shared/upstream'].find((d) => existsSync(d)) ?? resolve('..', 'shared', 'upstream');

export type TcpOutcome = 'connected' | 'refused' | 'timeout' | 'error';

/** One TCP connection attempt from the host: tells a listener, a refusal and a silent drop apart. */
export function tcpProbe(address: string, port: number, timeoutMs = 3000): Promise<TcpOutcome> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port });
    const done = (outcome: TcpOutcome) => {
      socket.destroy();
      resolve(outcome);
    };
    socket.setTimeout(timeoutMs, () => done('timeout'));
    socket.once('connect', () => done('connected'));
    socket.once('error', (e: NodeJS.ErrnoException) => done(e.code === 'ECONNREFUSED' ? 'refused' : e.code === 'ETIMEDOUT' ? 'timeout' : 'error'));
  });
}

export const notRoot = (): string | undefined => (process.getuid?.() === 0 ? undefined : 'needs root');

/**
 * A lab config on free host ports with its state under `dir`, parsed like lab.yaml against this
 * host's facts; a config problem throws, naming every field.
 */
export async function throwawayLabConfig(name: string, dir: string, extraYaml = '', forwards: Record<string, string> = {}): Promise<LabConfig> {
  const parsed = parseLabConfig(await throwawayLabYaml(name, join(dir, 'state'), extraYaml, forwards), await readHostFacts(), dir);
  if (!parsed.ok) throw new Error(`throwaway config ${name}: ${JSON.stringify(parsed.problems)}`);
  return parsed.config;
}

/** The processes whose command line contains every one of `fragments`. */
export async function pidsWithCommandLine(...fragments: string[]): Promise<number[]> {
  const pids: number[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd && fragments.every((f) => cmd.includes(f))) pids.push(Number(pid));
  }
  return pids;
}

/** How many qemu processes have `dir` in their command line: a test's leak check after teardown. */
export async function qemuProcessesUnder(dir: string): Promise<number> {
  return (await pidsWithCommandLine('qemu-system', dir)).length;
}

/** FIXTURE: a trixie image's inputs with made-up Release hashes and dates, for the pure planners. */
export const FIXTURE_IMAGE_INPUTS: ImageInputs = {
  suite: 'trixie',
  mirror: 'http://deb.debian.org/debian',
  securityMirror: 'http://deb.debian.org/debian-security',
  architecture: 'amd64',
  releaseHashes: { trixie: 'a'.repeat(64), 'trixie-updates': 'b'.repeat(64), 'trixie-security': 'c'.repeat(64) },
  releaseDates: { trixie: 1763000000, 'trixie-updates': 1763500000, 'trixie-security': 1764000000 },
  sourceDateEpoch: 1764000000,
};

/**
 * A rendered user-data read back: its cloud-config, every file it writes by path (write_files and
 * the archive part alike), which of them the archive part writes, and the cloud-config alone as
 * `cloud-init schema` reads it.
 */
export function readSeedUserData(userData: string) {
  const ud = parseUserDataDocument(userData);
  const files: Record<string, { path: string; content: string; permissions: string; append?: boolean }> = {};
  for (const f of [...ud.cloudConfig.write_files, ...ud.files]) files[f.path] = f;
  return { cc: ud.cloudConfig as any, files, archived: new Set(ud.files.map((f) => f.path)), cloudConfigText: renderUserDataDocument({ cloudConfig: ud.cloudConfig, files: [] }) };
}

export const IMAGE_LIKE_DISK_IDS = { diskGuid: '11111111-2222-4333-8444-555555555555', espPartGuid: '22222222-3333-4444-8555-666666666666', rootPartGuid: '33333333-4444-4555-8666-777777777777' };
/** The ESP's place and size on imageLikeDisk, in MiB. */
export const IMAGE_LIKE_ESP_MIB = { start: 1, size: 8 };

/** A 100 MiB disk partitioned as the image is (sgdisk with the disk plan's arguments): an 8 MiB ESP at 1 MiB, root after it. */
export async function imageLikeDisk(file: string): Promise<void> {
  await writeFile(file, '');
  await truncate(file, 100 * 2 ** 20);
  await run('sgdisk', renderSgdiskArgs(IMAGE_LIKE_DISK_IDS, { espStartMiB: IMAGE_LIKE_ESP_MIB.start, espSizeMiB: IMAGE_LIKE_ESP_MIB.size, rootStartMiB: 9, rootSizeMiB: 90, totalMiB: 100 }, file));
}

/**
 * A qcow2 base image shaped as the disk layer makes it: imageLikeDisk's table and an ESP (FAT) with
 * `espFiles` under EFI/BOOT (by default the image's empty GRUB environment block).
 */
export async function imageLikeBaseImage(dir: string, espFiles: Record<string, string | Buffer> = { grubenv: renderGrubEnvBlock({}) }): Promise<string> {
  const env = { MTOOLS_SKIP_CHECK: '1' };
  const esp = join(dir, 'esp.img');
  await run('mkfs.vfat', ['-C', esp, String(IMAGE_LIKE_ESP_MIB.size * 1024)]);
  await run('mmd', ['-i', esp, '::/EFI', '::/EFI/BOOT'], { env });
  const staged = await mkdtemp(join(dir, 'esp-files-'));
  for (const [name, content] of Object.entries(espFiles)) await writeFile(join(staged, name), content);
  await run('mcopy', ['-i', esp, ...Object.keys(espFiles).map((name) => join(staged, name)), '::/EFI/BOOT/'], { env });
  const raw = join(dir, 'disk.raw');
  await imageLikeDisk(raw);
  await run('dd', [`if=${esp}`, `of=${raw}`, 'bs=1M', `seek=${IMAGE_LIKE_ESP_MIB.start}`, 'conv=notrunc', 'status=none']);
  const base = join(dir, 'base.qcow2');
  await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, base]);
  await rm(raw);
  await rm(esp);
  return base;
}
