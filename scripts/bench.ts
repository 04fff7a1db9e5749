// npm run bench -- [--warm] : image build, boot and teardown figures on this machine.
import { osOnlySourceAtMirrorHead } from '../images/source.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runMain } from '../core/main.ts';
import { cacheRoot } from '../core/paths.ts';
import { formatSize } from '../core/units.ts';
import { buildImage } from '../images/build.ts';
import { parseLabConfig } from '../config/load.ts';
import { readHostFacts } from '../config/host-facts.ts';
import { labDown } from '../lab/down.ts';
import { QemuDriver } from '../lab/drivers/qemu.ts';
import { throwawayLabYaml } from '../lab/ports.ts';
import { labUp } from '../lab/up.ts';
import { sshRun } from '../lab/ssh.ts';
import { shellQuote } from '../core/exec.ts';
import { LabError } from '../core/errors.ts';
import { summarizeRuns } from '../core/units.ts';
import type { LabConfig } from '../config/lab-config.ts';
import type { ImageSource } from '../images/source.ts';
import type { Progress } from '../core/progress.ts';

const TARGETS = { coldOsSeconds: 120, warmSeconds: 5, compressedMiB: 250 };
/** Boot targets per accelerator (issue 15): boot → SSH, boot → cloud-init done, whole lab:up. */
const BOOT_TARGETS = { tcg: { ssh: 40, cloudInit: 60, labUp: 90 }, kvm: { ssh: 8, cloudInit: 15, labUp: undefined } } as const;

/**
 * The guest's own view of its first boot, less sensitive to host load than wall time: where
 * a regression came from. One SSH session; each section is headed by its command.
 */
export const GUEST_BREAKDOWN_COMMANDS = [
  'systemd-analyze',
  // The kernel's phase: its own start-up, the initramfs, the root filesystem, systemd taking over.
  "dmesg | grep -E 'Linux version|Freeing unused kernel|Run /init|EXT4-fs \\(.*\\): mounted|systemd\\[1\\]: systemd [0-9]' | cut -c1-110",
  'systemd-analyze critical-chain ssh.service cloud-final.service',
  'systemd-analyze blame | head -n 15',
  'cloud-init analyze blame | head -n 12',
  // sshd listening, then the first login: the gap is the handshake under the booting guest's load,
  // and an abandoned attempt shows as a preauth close.
  "journalctl -b -o short-monotonic --no-pager -u ssh.service | grep -E 'listening on 0|Accepted|preauth' | head -n 6 | cut -c1-100",
  // Where the emulated CPU went: each running unit's cgroup, and each finished one (systemd logs
  // what it consumed). On the way to SSH every second of it is shared with cloud-init's start.
  "(for f in /sys/fs/cgroup/system.slice/*/cpu.stat; do u=${f%/cpu.stat}; echo \"$(awk '/^usage_usec/{printf \"%.3fs\", $2/1e6}' \"$f\") ${u##*/} (running)\"; done; journalctl -b -o cat --no-pager | sed -n 's/^\\(.*\\): Consumed \\([0-9.]*s\\) CPU time.*/\\2 \\1/p') | sort -rn | head -n 20",
  // Bytecode compiled at this boot: stale .pyc files would be recompiled under emulation each first boot.
  `echo "$(find /usr/lib/python3 /usr/lib/python3.13 -name '*.pyc' -newermt "$(uptime -s)" | wc -l) .pyc files written since boot"`,
] as const;

function renderBreakdownScript(): string {
  // printf, not echo: sh's echo would read the backslashes in a command as escapes.
  return GUEST_BREAKDOWN_COMMANDS.map((c) => `echo; printf '%s\\n' ${shellQuote(`$ ${c}`)}; sudo sh -c ${shellQuote(c)} 2>&1`).join('\n');
}

interface BootFigures {
  accel: 'kvm' | 'tcg';
  firmwareSeconds: number;
  sshSeconds: number;
  cloudInitSeconds: number;
  labUpSeconds: number;
  downSeconds: number;
  /** The guest's own figures, as printed. */
  breakdown: string;
}

function parseRuns(value: unknown): number {
  if (value === undefined) return 1;
  const runs = Number(value);
  if (!Number.isInteger(runs) || runs < 1 || runs > 20) throw new LabError(`--runs ${String(value)}: expected a whole number from 1 to 20`, 'e.g. npm run bench -- --warm --runs 3');
  return runs;
}

/** One cold lab:up on the built image, the guest's breakdown, and lab:down. */
async function measureBoot(config: LabConfig, source: ImageSource, cacheDir: string, progress: Progress, signal: AbortSignal): Promise<BootFigures> {
  const driver = new QemuDriver();
  const upStart = Date.now();
  const up = await labUp({ config, driver, source, progress, signal, cacheDir });
  const labUpSeconds = (Date.now() - upStart) / 1000;
  const target = { stateDir: config.stateDir, user: config.ssh.user, ...driver.sshEndpoint(up.state) };
  const breakdown = await sshRun(target, ['sh', '-c', renderBreakdownScript()], { signal, allowFailure: true, timeoutMs: 120_000 });
  // The firmware's and loader's share: the guest's clock (set from qemu's RTC, to the second)
  // less its uptime is when its kernel started; qemu started when lab:up began booting it.
  const clock = await sshRun(target, ['sh', '-c', 'date +%s.%N; cut -d" " -f1 /proc/uptime'], { signal, allowFailure: true });
  const [guestNow, guestUptime] = clock.stdout.trim().split('\n').map(Number);
  const t = Object.fromEntries(up.timings.map((s) => [s.title, s.durationMs / 1000]));
  const bootStep = up.timings.findIndex((s) => s.title === 'Booting the VM');
  const qemuStartSeconds = upStart / 1000 + up.timings.slice(0, Math.max(0, bootStep)).reduce((sum, s) => sum + s.durationMs / 1000, 0);
  const sshSeconds = (t['Booting the VM'] ?? 0) + (t['Waiting for SSH'] ?? 0);
  const downStart = Date.now();
  await labDown({ config, progress });
  return {
    accel: up.state.accel,
    firmwareSeconds: guestNow !== undefined && guestUptime !== undefined ? guestNow - guestUptime - qemuStartSeconds : NaN,
    sshSeconds,
    cloudInitSeconds: sshSeconds + (t['Waiting for cloud-init'] ?? 0),
    labUpSeconds,
    downSeconds: (Date.now() - downStart) / 1000,
    breakdown: `${breakdown.stdout.trimEnd()}\n${breakdown.exitCode === 0 ? '' : `(breakdown incomplete: ssh exit ${breakdown.exitCode} ${breakdown.stderr.trim()})\n`}`,
  };
}

runMain(
  {
    boolean: ['warm', 'archive'],
    string: ['archive-dir', 'boot', 'runs'],
    usage: `
npm run bench -- [--warm] [--boot uefi|direct] [--runs N]
  Cold-builds the image in a temporary cache (--warm: reuse the normal cache), rebuilds it
  warm, boots a lab (--boot: how, default lab.yaml's default vm.boot; --runs: N boots one after
  another, reported as the median and range), and prints the figures with their targets.
npm run bench -- --archive [--archive-dir DIR]
  The input archive: its size for the OS-only image, what a second archive of the lock adds, what
  the newest lock in DIR added over the one before, offline rebuild (no route, empty cache) against
  a cold online build.`,
  },
  async ({ args, progress, signal }) => {
    const work = await mkdtemp(join(tmpdir(), 'labsmith-bench-'));
    const cacheDir = args.warm ? cacheRoot() : join(work, 'cache');
    const row = (what: string, value: string, target = '') => process.stdout.write(`${what.padEnd(34)} ${value.padStart(12)}  ${target}\n`);
    try {
      const bootYaml = args.boot === undefined ? '' : `vm: { boot: ${JSON.stringify(args.boot)} }\n`;
      const parsed = parseLabConfig(await throwawayLabYaml('bench', join(work, 'state'), bootYaml), await readHostFacts(), work);
      if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
      const config = parsed.config;
      if (args.archive) {
        const { benchArchive } = await import('./bench-archive.ts');
        return await benchArchive({ config, progress, signal, archiveDir: args['archive-dir'], row });
      }

      // Benchmarks measure today's archive: an OS-only lock taken from the mirror now.
      const source = await osOnlySourceAtMirrorHead(config, signal);
      const coldStart = Date.now();
      const cold = await buildImage({ debian: config.debian, source, progress, signal, cacheDir });
      const coldSeconds = (Date.now() - coldStart) / 1000;
      const warmStart = Date.now();
      await buildImage({ debian: config.debian, source, progress, signal, cacheDir });
      const warmSeconds = (Date.now() - warmStart) / 1000;

      const runs = parseRuns(args.runs);
      const boots: BootFigures[] = [];
      for (let i = 0; i < runs; i++) {
        if (runs > 1) progress.info(`boot ${i + 1} of ${runs}`);
        boots.push(await measureBoot(config, source, cacheDir, progress, signal));
      }
      const last = boots.at(-1)!;
      const m = cold.manifest;
      process.stdout.write('\nlabsmith bench (this machine)\n');
      const stepSeconds = Object.fromEntries(cold.timings.map((s) => [s.title, s.durationMs / 1000]));
      for (const [layer, title] of [['tools', 'Building tools layer'], ['rootfs', 'Building OS layer'], ['disk', 'Building disk image']] as const) {
        // A cached layer reports when it was built; a fresh one, this run's step time.
        const seconds = cold.cacheHits[layer] ? (m.buildSeconds[layer] ?? 0) : (stepSeconds[title] ?? 0);
        row(`${cold.cacheHits[layer] ? 'cached' : 'cold'} build: ${layer} layer`, `${seconds.toFixed(1)} s`, layer === 'rootfs' ? `target ≤ ${TARGETS.coldOsSeconds} s` : '');
      }
      row('image build, total', `${coldSeconds.toFixed(1)} s`);
      row('warm rebuild (all layers cached)', `${warmSeconds.toFixed(1)} s`, `target ≤ ${TARGETS.warmSeconds} s`);
      row('raw disk', formatSize(m.rawBytes));
      row('qcow2', formatSize(m.files['disk.qcow2']?.bytes ?? 0));
      row('compressed qcow2 (zstd)', formatSize(m.files['disk-compressed.qcow2']?.bytes ?? 0), `target ≤ ${TARGETS.compressedMiB} MiB`);
      const accel = last.accel;
      const boot = BOOT_TARGETS[accel];
      const target = (seconds: number | undefined) => (seconds === undefined ? '' : `target ≤ ${seconds} s`);
      // One run: its figure; several: the median, with the range and every run after it.
      const figure = (pick: (b: BootFigures) => number) => {
        const values = boots.map(pick);
        if (values.length === 1) return `${values[0]!.toFixed(1)} s`;
        const { median, min, max } = summarizeRuns(values);
        return `${median.toFixed(1)} s  (${min.toFixed(1)}–${max.toFixed(1)}: ${values.map((v) => v.toFixed(1)).join(', ')})`;
      };
      row('boot', `${config.vm.boot}`, config.vm.boot === 'direct' ? '(the disk\'s kernel, no initramfs, NVMe; SeaBIOS)' : '(OVMF, GRUB, initramfs, virtio)');
      if (boots.every((b) => Number.isFinite(b.firmwareSeconds))) row('qemu start → guest kernel (≈ 1 s)', figure((b) => b.firmwareSeconds), config.vm.boot === 'direct' ? '(SeaBIOS loads the kernel)' : '(OVMF, GRUB, the kernel and initramfs read)');
      row(`boot → SSH (${accel})`, figure((b) => b.sshSeconds), target(boot.ssh));
      row(`boot → cloud-init done (${accel})`, figure((b) => b.cloudInitSeconds), target(boot.cloudInit));
      row(`lab:up total (${accel})`, figure((b) => b.labUpSeconds), target(boot.labUp));
      if (runs > 1) process.stdout.write(`(${runs} boots, one after another: the median, then the range and each run)\n`);
      if (accel === 'tcg') process.stdout.write(`(KVM targets: SSH ≤ ${BOOT_TARGETS.kvm.ssh} s, cloud-init ≤ ${BOOT_TARGETS.kvm.cloudInit} s; not measured: this machine boots under TCG)\n`);
      row('lab:down', figure((b) => b.downSeconds));
      process.stdout.write(`\nthe guest's own figures (${runs > 1 ? 'the last boot' : 'first boot'}):\n${last.breakdown}\n`);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  },
);
