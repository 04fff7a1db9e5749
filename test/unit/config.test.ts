import test from 'ava';
import { readFile } from 'node:fs/promises';
import { parseLabConfig } from '../../config/load.ts';
import { renderLabConfigJsonSchema } from '../../config/schema.ts';
import { NEUTRAL_HOST } from '../helpers.ts';

const parse = (text: string, host = NEUTRAL_HOST) => parseLabConfig(text, host, '/state');
const problemsOf = (text: string, host = NEUTRAL_HOST) => {
  const r = parse(text, host);
  return r.ok ? [] : r.problems.map((p) => `${p.path}: ${p.message}`);
};

test('an empty file gives the production-shaped defaults', (t) => {
  const r = parse('');
  if (!r.ok) return t.fail(JSON.stringify(r.problems));
  t.is(r.config.name, 'lab');
  t.is(r.config.stateDir, '/state/lab');
  t.is(r.config.debian.suite, 'trixie');
  t.deepEqual(r.config.kubernetes, { version: '1.37', dnsDomain: 'cluster.local', podSubnet: '10.42.0.0/16', serviceSubnet: '10.96.0.0/12', enabled: true });
  t.deepEqual(r.config.addons, { ingressDomain: 'lab.test', storageDir: '/var/lib/labsmith/volumes', policyNamespaces: ['default'], defaultDenyEgress: false });
  t.deepEqual(
    r.config.network.forwards.map((f) => `${f.name} ${f.host}->${f.guest}`),
    ['http 80->30080', 'https 443->30443', 'ssh 2222->22', 'apiserver 6443->6443'],
  );
  t.is(r.config.network.hostAddress, '127.0.0.1');
});

test('the committed lab.yaml is valid', async (t) => {
  const r = parse(await readFile('lab.yaml', 'utf8'));
  t.true(r.ok, r.ok ? '' : JSON.stringify(r.problems));
});

test('forwards merge by name over the defaults and can add new ones', (t) => {
  const r = parse('network:\n  forwards:\n    http: { host: 8080 }\n    grafana: { host: 3000, guest: 30300 }\n');
  if (!r.ok) return t.fail(JSON.stringify(r.problems));
  const byName = Object.fromEntries(r.config.network.forwards.map((f) => [f.name, f]));
  t.deepEqual(byName.http, { name: 'http', host: 8080, guest: 30080 });
  t.deepEqual(byName.grafana, { name: 'grafana', host: 3000, guest: 30300 });
  t.is(byName.https?.host, 443);
});

test('wrong types are all reported at once, each with its field path', (t) => {
  const problems = problemsOf('name: 42\nvm:\n  cpus: two\n  memory: lots\n  accel: fast\nnetwork:\n  forwards:\n    http: { host: 99999 }\n');
  const paths = problems.map((p) => p.split(':')[0]);
  t.deepEqual(paths.sort(), ['name', 'network.forwards.http.host', 'vm.accel', 'vm.cpus', 'vm.memory'].sort());
});

test('unknown fields are named', (t) => {
  t.deepEqual(problemsOf('vm:\n  cpu: 2\n'), ['vm: unknown field cpu']);
});

test('YAML syntax errors name the line', (t) => {
  const problems = problemsOf('name: lab\nvm: [\n');
  t.true(problems.length > 0);
  t.regex(problems[0]!, /^line \d+/);
});

test('pod and service subnets that overlap are reported with both fields', (t) => {
  t.deepEqual(problemsOf('kubernetes:\n  podSubnet: 10.96.0.0/16\n'), [
    'kubernetes.podSubnet: 10.96.0.0/16 overlaps kubernetes.serviceSubnet 10.96.0.0/12',
  ]);
});

test('subnets overlapping qemu user networking and host routes and addresses are reported', (t) => {
  const host = { ...NEUTRAL_HOST, routes: ['10.42.0.0/24'], addresses: [{ address: '10.96.5.5', prefix: 24, ifname: 'eth1' }] };
  const problems = problemsOf('kubernetes:\n  podSubnet: 10.0.0.0/16\n', host);
  t.true(problems.some((p) => p === "kubernetes.podSubnet: 10.0.0.0/16 overlaps qemu's user network 10.0.2.0/24: pick a range the host does not use"), problems.join('\n'));
  t.true(problems.some((p) => p.startsWith('kubernetes.serviceSubnet: 10.96.0.0/12 overlaps the host network 10.96.5.0/24 on eth1')), problems.join('\n'));
  const routeOnly = problemsOf('', { ...NEUTRAL_HOST, routes: ['10.42.0.0/24'] });
  t.deepEqual(routeOnly, ['kubernetes.podSubnet: 10.42.0.0/16 overlaps the host route 10.42.0.0/24: pick a range the host does not use']);
});

test('host bits in a CIDR are an error', (t) => {
  t.deepEqual(problemsOf('kubernetes:\n  podSubnet: 10.42.0.1/16\n'), ['kubernetes.podSubnet: 10.42.0.1/16 is not a network address (host bits must be zero, e.g. 10.42.0.0/16)']);
});

test('privileged host ports without root say so and suggest the unprivileged port', (t) => {
  const problems = problemsOf('', { ...NEUTRAL_HOST, isRoot: false });
  t.deepEqual(problems, [
    'network.forwards.http.host: port 80 needs root (ports below 1024 are privileged): run as root, or set network.forwards.http.host: 8080',
    'network.forwards.https.host: port 443 needs root (ports below 1024 are privileged): run as root, or set network.forwards.https.host: 8443',
  ]);
  t.deepEqual(problemsOf('', { ...NEUTRAL_HOST, isRoot: false, unprivilegedPortStart: 0 }), []);
});

test('duplicate host ports, too few cpus, too little memory and Kubernetes 1.38 with containerd 1.7', (t) => {
  const problems = problemsOf('vm: { cpus: 1, memory: 1GiB }\nkubernetes: { version: "1.38" }\nnetwork:\n  forwards:\n    ssh: { host: 80 }\n');
  t.is(problems.length, 4, problems.join('\n'));
  t.true(problems.some((p) => p.startsWith('vm.cpus: 1 is too few')));
  t.true(problems.some((p) => p.startsWith('vm.memory: 1GiB is too little')));
  t.true(problems.some((p) => p.startsWith('kubernetes.version: 1.38 refuses containerd 1.x')));
  t.true(problems.some((p) => p === 'network.forwards.ssh.host: port 80 is also used by network.forwards.http'));
});

test('vm.accel kvm without /dev/kvm is an error', (t) => {
  t.deepEqual(problemsOf('vm: { accel: kvm }\n', { ...NEUTRAL_HOST, kvmDevice: false }), [
    'vm.accel: kvm requested but /dev/kvm does not exist: use "auto" or "tcg"',
  ]);
});

test('a hostAddress that is not on this host is an error', (t) => {
  const host = { ...NEUTRAL_HOST, addresses: [{ address: '192.0.2.2', prefix: 24, ifname: 'eth0' }] };
  t.deepEqual(problemsOf('network: { hostAddress: 192.0.2.2 }\n', host), []);
  t.is(problemsOf('network: { hostAddress: 198.51.100.7 }\n', host)[0]?.split(':')[0], 'network.hostAddress');
});

test('the JSON Schema describes every top-level field and rejects unknown keys', (t) => {
  const schema = JSON.parse(renderLabConfigJsonSchema());
  t.deepEqual(Object.keys(schema.properties).sort(), ['addons', 'backup', 'debian', 'kubernetes', 'libvirt', 'name', 'network', 'server', 'ssh', 'stateDir', 'vm']);
  t.is(schema.additionalProperties, false);
  t.deepEqual(schema.properties.vm.properties.accel.enum, ['auto', 'kvm', 'tcg']);
  t.regex(schema.properties.addons.properties.logTarget.pattern, /udp\|tcp/);
});

test('shape problems and meaning problems are reported together', (t) => {
  const problems = problemsOf('name: Bad_Name\nvm: { cpus: 1, accel: warp }\nkubernetes: { podSubnet: 10.96.0.0/16 }\nnetwork: { bogus: 1 }\n');
  t.deepEqual(problems.map((p) => p.split(':')[0]).sort(), ['kubernetes.podSubnet', 'name', 'network', 'vm.accel', 'vm.cpus']);
});

test('libvirt settings: bridge mode needs a bridge; the NAT subnet must not overlap the cluster or the host', (t) => {
  t.deepEqual(problemsOf('libvirt: { networkMode: bridge }\n'), ['libvirt.bridge: is required with networkMode bridge: name an existing host bridge such as br0']);
  t.deepEqual(problemsOf('libvirt: { subnet: 10.42.7.0/24 }\n'), ['kubernetes.podSubnet: 10.42.0.0/16 overlaps libvirt.subnet 10.42.7.0/24']);
  const onLan = problemsOf('', { ...NEUTRAL_HOST, routes: ['192.168.150.0/24'] });
  t.deepEqual(onLan, ['libvirt.subnet: 192.168.150.0/24 overlaps the host route 192.168.150.0/24: pick a range the host does not use']);
});

test('the committed lab.schema.json is current (regenerate with npm run lab:schema)', async (t) => {
  t.is(await readFile('lab.schema.json', 'utf8'), renderLabConfigJsonSchema());
});

test('add-on settings: a bad log target, a relative storage dir and a bad namespace are named with what to write', (t) => {
  const problems = problemsOf('addons:\n  logTarget: syslog.example:514\n  storageDir: volumes\n  policyNamespaces: [Mail]\n');
  t.deepEqual(problems.map((p) => p.split(':')[0]).sort(), ['addons.logTarget', 'addons.policyNamespaces.0', 'addons.storageDir']);
  t.true(problems.some((p) => p.includes('udp://HOST:PORT or tcp://HOST:PORT')));
});
