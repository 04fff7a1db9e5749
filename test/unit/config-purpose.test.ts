/**
 * Config checks by purpose: what a lab.yaml means is always checked; whether this host can
 * create the lab (its routes and addresses, privileged ports, /dev/kvm) only for commands
 * that create something.
 */
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../../core/errors.ts';
import { loadLabConfig, parseLabConfig } from '../../config/load.ts';
import { validateHostFit, validateLabConfig } from '../../config/validate.ts';
import { NEUTRAL_HOST, withTempDir } from '../helpers.ts';

// What a host with a running NAT lab looks like to a non-root user: the lab's own bridge on
// libvirt.subnet, ports below 1024 privileged.
const HOST_WITH_RUNNING_LAB = {
  ...NEUTRAL_HOST,
  isRoot: false,
  addresses: [{ address: '192.168.123.1', prefix: 24, ifname: 'labsmith-web' }],
  kvmDevice: false,
};
const YAML = 'name: web\nlibvirt: { subnet: 192.168.123.0/24 }\nvm: { accel: kvm }\nnetwork:\n  forwards:\n    http: { host: 80 }\n    https: { host: 443 }\n    ssh: { host: 2222 }\n';

test('creating a lab checks the host: its own running bridge, privileged ports and /dev/kvm are named', (t) => {
  const r = parseLabConfig(YAML, HOST_WITH_RUNNING_LAB, '/state');
  t.false(r.ok);
  const paths = r.ok ? [] : r.problems.map((p) => p.path).sort();
  t.deepEqual(paths, ['libvirt.subnet', 'network.forwards.http.host', 'network.forwards.https.host', 'vm.accel']);
});

test('acting on an existing lab checks only what the file says', (t) => {
  const r = parseLabConfig(YAML, undefined, '/state');
  t.true(r.ok, r.ok ? '' : JSON.stringify(r.problems));
  if (!r.ok) return;
  t.deepEqual(validateLabConfig(r.config), []);
  t.is(validateHostFit(r.config, HOST_WITH_RUNNING_LAB).length, 4);
});

test('meaning problems still stop every command (a port used twice is wrong whatever the host)', (t) => {
  const r = parseLabConfig('name: web\nnetwork:\n  forwards:\n    http: { host: 2222 }\n    ssh: { host: 2222 }\n', undefined, '/state');
  t.false(r.ok);
  t.deepEqual(r.ok ? [] : r.problems.map((p) => p.path), ['network.forwards.ssh.host']);
});

test("loadLabConfig: purpose 'existing' skips the host checks that 'create' (the default) runs", async (t) => {
  await withTempDir(async (dir) => {
    const file = join(dir, 'lab.yaml');
    await writeFile(file, YAML);
    const error = await t.throwsAsync(loadLabConfig(file, { host: HOST_WITH_RUNNING_LAB }));
    t.true(error instanceof ConfigError);
    const config = await loadLabConfig(file, { purpose: 'existing', host: HOST_WITH_RUNNING_LAB });
    t.is(config.name, 'web');
  });
});
