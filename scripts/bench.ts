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
  // Bytecode compiled at this boot: stale .pyc files would be recompiled under emulation each first boot.
  `echo "$(find /usr/lib/python3 /usr/lib/python3.13 -name '*.pyc' -newermt "$(uptime -s)" | wc -l) .pyc files written since boot"`,
] as const;

function renderBreakdownScript(): string {
  return GUEST_BREAKDOWN_COMMANDS.map((c) => `echo; echo ${shellQuote(`$ ${c}`)}; sudo sh -c ${shellQuote(c)} 2>&1`).join('\n');
}

runMain(
  {
    boolean: ['warm', 'archive'],
    string: ['archive-dir', 'boot'],
    usage: `
npm run bench -- [--warm] [--boot uefi|direct]
  Cold-builds the image in a temporary cache (--warm: reuse the normal cache), rebuilds it
  warm, boots a lab (--boot: how, default lab.yaml's default vm.boot), and prints the figures
  with their targets.
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

      const driver = new QemuDriver();
      const upStart = Date.now();
      const up = await labUp({ config, driver, source, progress, signal, cacheDir });
      const labUpSeconds = (Date.now() - upStart) / 1000;
      const breakdown = await sshRun({ stateDir: config.stateDir, user: config.ssh.user, ...driver.sshEndpoint(up.state) }, ['sh', '-c', renderBreakdownScript()], {
        signal,
        allowFailure: true,
        timeoutMs: 120_000,
      });
      // The firmware's and loader's share: the guest's clock (set from qemu's RTC, to the second)
      // less its uptime is when its kernel started; qemu started when lab:up began booting it.
      const clock = await sshRun({ stateDir: config.stateDir, user: config.ssh.user, ...driver.sshEndpoint(up.state) }, ['sh', '-c', 'date +%s.%N; cut -d" " -f1 /proc/uptime'], { signal, allowFailure: true });
      const [guestNow, guestUptime] = clock.stdout.trim().split('\n').map(Number);
      const t = Object.fromEntries(up.timings.map((s) => [s.title, s.durationMs / 1000]));
      const bootStep = up.timings.findIndex((s) => s.title === 'Booting the VM');
      const qemuStartSeconds = upStart / 1000 + up.timings.slice(0, Math.max(0, bootStep)).reduce((sum, s) => sum + s.durationMs / 1000, 0);
      const firmwareSeconds = guestNow !== undefined && guestUptime !== undefined ? guestNow - guestUptime - qemuStartSeconds : NaN;
      const sshSeconds = (t['Booting the VM'] ?? 0) + (t['Waiting for SSH'] ?? 0);
      const cloudInitSeconds = sshSeconds + (t['Waiting for cloud-init'] ?? 0);
      const downStart = Date.now();
      await labDown({ config, progress });
      const downSeconds = (Date.now() - downStart) / 1000;

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
      const boot = BOOT_TARGETS[up.state.accel];
      const target = (seconds: number | undefined) => (seconds === undefined ? '' : `target ≤ ${seconds} s`);
      row('boot', `${config.vm.boot}`, config.vm.boot === 'direct' ? '(the disk\'s kernel, no initramfs, NVMe; SeaBIOS)' : '(OVMF, GRUB, initramfs, virtio)');
      if (Number.isFinite(firmwareSeconds)) row('qemu start → guest kernel (≈ 1 s)', `${firmwareSeconds.toFixed(1)} s`, config.vm.boot === 'direct' ? '(SeaBIOS loads the kernel)' : '(OVMF, GRUB, the kernel and initramfs read)');
      row(`boot → SSH (${up.state.accel})`, `${sshSeconds.toFixed(1)} s`, target(boot.ssh));
      row(`boot → cloud-init done (${up.state.accel})`, `${cloudInitSeconds.toFixed(1)} s`, target(boot.cloudInit));
      row(`lab:up total (${up.state.accel})`, `${labUpSeconds.toFixed(1)} s`, target(boot.labUp));
      if (up.state.accel === 'tcg') process.stdout.write(`(KVM targets: SSH ≤ ${BOOT_TARGETS.kvm.ssh} s, cloud-init ≤ ${BOOT_TARGETS.kvm.cloudInit} s; not measured: this machine boots under TCG)\n`);
      row('lab:down', `${downSeconds.toFixed(1)} s`);
      process.stdout.write(`\nthe guest's own figures (first boot):\n${breakdown.stdout.trimEnd()}\n${breakdown.exitCode === 0 ? '' : `(breakdown incomplete: ssh exit ${breakdown.exitCode} ${breakdown.stderr.trim()})\n`}`);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  },
);
