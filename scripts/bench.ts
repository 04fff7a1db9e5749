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

const TARGETS = { coldOsSeconds: 120, warmSeconds: 5, compressedMiB: 250, sshSeconds: 40, cloudInitSeconds: 60 };

runMain(
  {
    boolean: ['warm', 'archive'],
    string: ['archive-dir'],
    usage: `
npm run bench -- [--warm]
  Cold-builds the image in a temporary cache (--warm: reuse the normal cache), rebuilds it
  warm, boots a lab, and prints the figures with their targets.
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
      const parsed = parseLabConfig(await throwawayLabYaml('bench', join(work, 'state')), await readHostFacts(), work);
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
      const up = await labUp({ config, driver, source, progress, signal, cacheDir });
      const t = Object.fromEntries(up.timings.map((s) => [s.title, s.durationMs / 1000]));
      const sshSeconds = (t['Booting the VM'] ?? 0) + (t['Waiting for SSH'] ?? 0);
      const cloudInitSeconds = sshSeconds + (t['Waiting for cloud-init'] ?? 0);
      const downStart = Date.now();
      await labDown({ config, driver, progress });
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
      row(`boot → SSH (${up.state.accel})`, `${sshSeconds.toFixed(1)} s`, up.state.accel === 'tcg' ? `target ≤ ${TARGETS.sshSeconds} s` : '');
      row(`boot → cloud-init done (${up.state.accel})`, `${cloudInitSeconds.toFixed(1)} s`, up.state.accel === 'tcg' ? `target ≤ ${TARGETS.cloudInitSeconds} s` : '');
      row('lab:down', `${downSeconds.toFixed(1)} s`);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  },
);
