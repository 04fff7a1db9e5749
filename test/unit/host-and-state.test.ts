import test from 'ava';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LabError } from '../../core/errors.ts';
import { parseIpAddrs, parseIpRoutes } from '../../config/host-facts.ts';
import { ensurePortsFree, freePorts, probePort, probeUdpPort, throwawayLabYaml } from '../../lab/ports.ts';
import { acquireLabLock, isProcessAlive } from '../../lab/state.ts';
import { parseReleaseDate, readMirrorState } from '../../images/mirror.ts';
import { ensureLayer, failedLogPath, isLayerComplete } from '../../images/layer-cache.ts';
import { withTempDir } from '../helpers.ts';

test('ip -j route: keeps unicast destinations, drops default, local and loopback', (t) => {
  const json = JSON.stringify([
    { dst: 'default', gateway: '192.0.2.1' },
    { dst: '192.0.2.0/24', dev: 'eth0' },
    { type: 'local', dst: '127.0.0.0/8' },
    { type: 'broadcast', dst: '192.0.2.255' },
    { dst: '203.0.113.9', dev: 'wg0' },
  ]);
  t.deepEqual(parseIpRoutes(json), ['192.0.2.0/24', '203.0.113.9/32']);
  t.deepEqual(parseIpRoutes('not json'), []);
});

test('ip -j addr: IPv4 addresses with prefix and interface', (t) => {
  const json = JSON.stringify([{ ifname: 'lo', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }] }, { ifname: 'eth0', addr_info: [{ family: 'inet6', local: '::1', prefixlen: 128 }, { family: 'inet', local: '192.0.2.2', prefixlen: 24 }] }]);
  t.deepEqual(parseIpAddrs(json), [{ address: '127.0.0.1', prefix: 8, ifname: 'lo' }, { address: '192.0.2.2', prefix: 24, ifname: 'eth0' }]);
});

test('a host port in use is named with its field and what to do', async (t) => {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  t.is(await probePort('127.0.0.1', port), 'EADDRINUSE');
  const error = await t.throwsAsync(ensurePortsFree('127.0.0.1', [{ name: 'https', host: port, guest: 30443 }]));
  t.true(error instanceof LabError);
  t.regex(error!.message, new RegExp(`network.forwards.https.host: TCP port ${port} on 127.0.0.1 is already in use`));
  server.close();
  await new Promise((r) => setTimeout(r, 50));
  t.is(await probePort('127.0.0.1', port), undefined);
});

test('a UDP host port in use (a bound UDP socket, no TCP listener) is named for a udp or both forward, not for a tcp one', async (t) => {
  const socket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  const port = socket.address().port;
  try {
    t.is(await probePort('127.0.0.1', port), undefined, 'TCP on the same port is free');
    t.is(await probeUdpPort('127.0.0.1', port), 'EADDRINUSE');
    await t.notThrowsAsync(ensurePortsFree('127.0.0.1', [{ name: 'web', host: port, guest: 80, protocol: 'tcp' }]));
    for (const protocol of ['udp', 'both'] as const) {
      const error = await t.throwsAsync(ensurePortsFree('127.0.0.1', [{ name: 'dns', host: port, guest: 53, protocol }]));
      t.true(error instanceof LabError);
      t.regex(error!.message, new RegExp(`network.forwards.dns.host: UDP port ${port} on 127.0.0.1 is already in use \\(see \`ss -lunp`));
      t.notRegex(error!.message, /TCP port/);
    }
  } finally {
    await new Promise<void>((r) => socket.close(() => r()));
  }
  t.is(await probeUdpPort('127.0.0.1', port), undefined, 'free again once the socket is closed');
});

test('free ports for a throwaway lab are distinct and free (a CI run once got one port for two forwards)', async (t) => {
  const names = Array.from({ length: 64 }, (_, i) => `p${i}`);
  for (let round = 0; round < 20; round++) {
    const ports = Object.values(await freePorts(names));
    t.is(new Set(ports).size, names.length);
    for (const port of ports.slice(0, 4)) t.is(await probePort('127.0.0.1', port), undefined);
  }
  const yaml = await throwawayLabYaml('ports', '/tmp/unused');
  const hostPorts = [...yaml.matchAll(/host: (\d+)/g)].map((m) => m[1]);
  t.is(hostPorts.length, 4);
  t.is(new Set(hostPorts).size, 4);
});

test('the lab lock refuses a second holder while the first lives, and takes over a dead one', async (t) => {
  await withTempDir(async (dir) => {
    const lock = await acquireLabLock(dir, 'lab');
    // Our own pid holds it: a different live pid (init, 1) stands in for a concurrent lab:up.
    await writeFile(join(dir, 'lab.lock'), '1');
    const error = await t.throwsAsync(acquireLabLock(dir, 'lab'));
    t.regex(error!.message, /lab "lab" is busy: another labsmith command \(pid 1\)/);
    await writeFile(join(dir, 'lab.lock'), '999999999');
    t.false(isProcessAlive(999999999));
    const again = await acquireLabLock(dir, 'lab');
    await again.release();
    await lock.release();
  });
});

test('Release dates parse', (t) => {
  t.is(parseReleaseDate('Origin: Debian\nDate: Sat, 15 Nov 2025 09:41:23 UTC\n'), 1763199683);
  t.is(parseReleaseDate('Origin: Debian\n'), undefined);
});

test('mirror state comes from each suite\'s InRelease on a real HTTP server; an unreachable mirror is named', async (t) => {
  const served: string[] = [];
  const server = http.createServer((req, res) => {
    served.push(req.url!);
    if (req.url === '/debian/dists/trixie/InRelease') return res.end('Date: Sat, 15 Nov 2025 09:41:23 UTC\n');
    if (req.url === '/debian/dists/trixie-updates/InRelease') return res.end('Date: Sun, 16 Nov 2025 09:41:23 UTC\n');
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/debian`;
  const state = await readMirrorState([{ uri: base, suite: 'trixie', components: ['main'] }, { uri: base, suite: 'trixie-updates', components: ['main'] }]);
  t.deepEqual(Object.keys(state.releaseHashes), ['trixie', 'trixie-updates']);
  t.is(state.newestDate, 1763199683 + 86400);
  const error = await t.throwsAsync(readMirrorState([{ uri: base, suite: 'nosuch', components: ['main'] }]));
  t.regex(error!.message, new RegExp(`cannot read ${base}/dists/nosuch/InRelease: HTTP 404`));
  t.regex((error as LabError).hint!, /debian.mirror/);
  server.close();
});

test('layer cache: a layer exists only when complete; a failed build leaves its log, not the layer', async (t) => {
  await withTempDir(async (dir) => {
    const layer = { name: 'rootfs' as const, hash: 'abc', dir: join(dir, 'rootfs-abc'), inputs: { x: 1 } };
    const error = await t.throwsAsync(ensureLayer(layer, async (tmp) => {
      await writeFile(join(tmp, 'build.log'), 'E: mirror said no\n');
      throw new Error('mmdebstrap failed');
    }));
    t.is(error!.message, 'mmdebstrap failed');
    t.false(isLayerComplete(layer));
    const { readFile, readdir } = await import('node:fs/promises');
    t.is(await readFile(failedLogPath(layer), 'utf8'), 'E: mirror said no\n');
    t.deepEqual((await readdir(dir)).sort(), ['rootfs-abc.failed.log']);
    let builds = 0;
    const first = await ensureLayer(layer, async (tmp) => { builds++; await mkdir(join(tmp, 'x')); });
    const second = await ensureLayer(layer, async () => { builds++; });
    t.false(first.cached);
    t.true(second.cached);
    t.is(builds, 1);
  });
});

test('layer cache: two builds of the same layer at once (two labs sharing the cache) both succeed and keep one layer', async (t) => {
  await withTempDir(async (dir) => {
    const layer = { name: 'rootfs' as const, hash: 'def', dir: join(dir, 'rootfs-def'), inputs: { x: 2 } };
    let releaseSlow!: () => void;
    const slowMayFinish = new Promise<void>((r) => (releaseSlow = r));
    const slow = ensureLayer(layer, async (tmp) => {
      await writeFile(join(tmp, 'who'), 'slow');
      await slowMayFinish;
    });
    const fast = await ensureLayer(layer, async (tmp) => writeFile(join(tmp, 'who'), 'fast'));
    releaseSlow();
    const late = await slow;
    t.false(fast.cached);
    t.true(late.cached, 'the later build sees the finished layer and drops its own');
    const { readFile, readdir } = await import('node:fs/promises');
    t.is(await readFile(join(layer.dir, 'who'), 'utf8'), 'fast', 'the layer in use is not replaced');
    t.deepEqual(await readdir(dir), ['rootfs-def'], 'no temporary directory is left');
  });
});
