import test from 'ava';
import { readFile } from 'node:fs/promises';
import { parseLabConfig } from '../../config/load.ts';
import { cidrProblem, httpUrlProblem, kubernetesMinorProblem, sizeProblem } from '../../config/formats.ts';
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
  t.deepEqual(r.config.kubernetes, { version: '1.37', dnsDomain: 'cluster.local', podSubnet: '10.42.0.0/16', serviceSubnet: '10.96.0.0/12', enabled: true, containerd: '1.7' });
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
  t.deepEqual(byName.http, { name: 'http', host: 8080, guest: 30080, protocol: 'tcp' });
  t.deepEqual(byName.grafana, { name: 'grafana', host: 3000, guest: 30300, protocol: 'tcp' });
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

test('host bits in a CIDR are an error naming the network', (t) => {
  t.deepEqual(problemsOf('kubernetes:\n  podSubnet: 10.42.0.1/16\n'), ['kubernetes.podSubnet: "10.42.0.1/16" has host bits set: the network is 10.42.0.0/16']);
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
  t.true(problems.some((p) => p.includes('set kubernetes.containerd: "2"')), 'the refusal names the way on');
});

test('kubernetes.containerd "2" makes a 1.38 lab buildable; an OS-only 1.38 lab runs no kubelet; a bare number is refused', (t) => {
  t.deepEqual(problemsOf('kubernetes: { version: "1.38", containerd: "2" }\n'), []);
  t.deepEqual(problemsOf('kubernetes: { version: "1.38", enabled: false }\n'), []);
  t.deepEqual(problemsOf('kubernetes: { version: "1.37", containerd: "2" }\n'), [], 'containerd 2 also runs 1.37');
  t.is(problemsOf('kubernetes: { version: "1.38", containerd: 2 }\n')[0], 'kubernetes.containerd: expected "1.7" or "2" (quoted), got 2');
  const r = parse('kubernetes: { version: "1.38", containerd: "2" }\n');
  t.true(r.ok && r.config.kubernetes.containerd === '2');
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
  t.deepEqual(Object.keys(schema.properties).sort(), ['addons', 'backup', 'checks', 'debian', 'kubernetes', 'libvirt', 'name', 'network', 'registries', 'server', 'ssh', 'stateDir', 'vm', 'workloads']);
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

/** YAML for one field at a dotted path, with the value written as YAML (JSON is YAML). */
function yamlAt(path: string, value: unknown): string {
  const keys = path.split('.');
  return keys.map((k, i) => `${'  '.repeat(i)}${k}:${i === keys.length - 1 ? ` ${JSON.stringify(value)}` : ''}`).join('\n') + '\n';
}

// [field, malformed value, what the message must say]: each is refused when lab.yaml is loaded,
// as its own field, with the value in the message, and nothing else is reported.
const MALFORMED: [string, unknown, RegExp][] = [
  ['kubernetes.podSubnet', '10.42.0.300/16', /is not an IPv4 CIDR: 300 is more than 255/],
  ['kubernetes.podSubnet', '10.42.0.1/16', /has host bits set: the network is 10\.42\.0\.0\/16/],
  ['kubernetes.podSubnet', '10.42.0.0/33', /the prefix 33 is more than 32/],
  ['kubernetes.serviceSubnet', '10.96.0.0', /write ADDRESS\/PREFIX/],
  ['libvirt.subnet', '192.168.150.1/24', /host bits set: the network is 192\.168\.150\.0\/24/],
  ['vm.memory', '4GB', /decimal unit: sizes here are binary, write 4GiB/],
  ['vm.memory', '4096', /has no unit: write e\.g\. 4096GiB or 4096MiB/],
  ['vm.disk', '20 gigs', /unknown unit "gigs"/],
  ['vm.disk', '0GiB', /is zero/],
  ['vm.cpus', 2.5, /2\.5 is not a whole number/],
  ['vm.cpus', 0, /0 is out of range: the number of CPUs is 1 to 64/],
  ['vm.cpus', 'two', /expected a whole number .* got "two"/],
  ['vm.accel', 'fast', /expected auto, kvm or tcg, got "fast"/],
  ['kubernetes.version', '1.37.0', /is a patch release: write the minor version 1\.37/],
  ['kubernetes.version', 'v1.37', /without the v, 1\.37/],
  ['kubernetes.version', 1.37, /expected a Kubernetes minor version .* got 1\.37/],
  ['kubernetes.enabled', 'yes', /expected true or false, got "yes"/],
  ['debian.mirror', 'ftp://ftp.debian.org/debian', /uses ftp: the mirror must be an http:\/\/ or https:\/\/ URL/],
  ['debian.securityMirror', 'deb.debian.org/debian-security', /is not a URL/],
  ['debian.mirror', 'http://me:secret@mirror.example/debian', /carries credentials/],
  ['debian.suite', 'Trixie', /is not a Debian suite name/],
  ['debian.sourceDateEpoch', -1, /-1 is out of range/],
  ['stateDir', 'labs/mine', /is relative: write an absolute path on the host/],
  ['stateDir', '~/labs', /~ is not expanded/],
  ['addons.storageDir', 'volumes', /is relative: write an absolute path in the VM/],
  ['addons.storageDir', '/var/lib/my volumes', /whitespace/],
  ['network.hostAddress', '127.0.0.256', /is not an IPv4 address: 256 is more than 255/],
  ['network.hostAddress', 'localhost', /write four numbers 0-255/],
  ['network.hostAddress', '127.000.0.1', /leading zero .* write 127\.0\.0\.1/],
  ['network.forwards.http.host', 99999, /99999 is out of range: a TCP port is 1 to 65535/],
  ['network.forwards.http.host', '8080', /expected a whole number .* got "8080"/],
  ['addons.logTarget', 'udp://10.0.2.2:99999', /port 99999 is not 1-65535/],
  ['addons.logTarget', 'syslog.example:514', /write udp:\/\/HOST:PORT or tcp:\/\/HOST:PORT/],
  ['addons.logTarget', 'tcp://10.0.2.300:514', /its host "10\.0\.2\.300" is not an IPv4 address: 300 is more than 255/],
  ['addons.logTarget', 'udp://Syslog.Example:514', /its host "Syslog\.Example" has capitals/],
  ['addons.ingressDomain', 'Lab.Test', /has capitals: write it in lowercase, lab\.test/],
  ['addons.ingressDomain', 'lab..test', /"" is an empty label/],
  ['addons.ingressDomain', 'lab.test.', /ends with a dot: write lab\.test/],
  ['kubernetes.dnsDomain', '-cluster.local', /"-cluster" must be letters, digits and dashes/],
  ['addons.policyNamespaces.0', 'mail.ns', /is not a DNS label: .* no dots/],
  ['libvirt.uri', 'qemu:/system', /is not a libvirt URI/],
  ['libvirt.uri', 'qemu://', /names no instance: end it with \/system or \/session/],
  ['libvirt.bridge', 'bridge-name-too-long', /is not an interface name: 1 to 15/],
  ['libvirt.pool', 'my pool', /is not a storage pool name/],
  ['ssh.user', 'Admin', /is not a Linux user name/],
  ['name', 'Lab', /is not a lab name/],
  ['vm', 'big', /expected a mapping, got "big"/],
];

test('every field with a format is checked as that format when loaded, naming the field and the value', (t) => {
  for (const [path, value, expected] of MALFORMED) {
    const yaml = path.endsWith('.0') ? yamlAt(path.slice(0, -2), [value]) : yamlAt(path, value);
    const problems = problemsOf(yaml);
    t.is(problems.length, 1, `${path}=${JSON.stringify(value)}: exactly its own problem, got ${JSON.stringify(problems)}`);
    const [field, ...rest] = (problems[0] ?? '').split(': ');
    const message = rest.join(': ');
    t.is(field, path, `${path}=${JSON.stringify(value)}`);
    t.regex(message, expected, `${path}=${JSON.stringify(value)}`);
    t.true(message.includes(typeof value === 'string' ? JSON.stringify(value) : String(value)), `${path}: the message names the value: ${message}`);
  }
});

// Well-formed values of the same fields load.
const WELL_FORMED: [string, unknown][] = [
  ['kubernetes.podSubnet', '10.44.0.0/16'],
  ['libvirt.subnet', '192.168.160.0/24'],
  ['vm.memory', '8GiB'],
  ['vm.memory', '6144MiB'],
  ['vm.disk', '40G'],
  ['vm.cpus', 4],
  ['kubernetes.version', '1.36'],
  ['debian.mirror', 'https://mirror.example/debian/'],
  ['stateDir', '/srv/labs/mine'],
  ['addons.storageDir', '/srv/volumes'],
  ['network.hostAddress', '127.0.0.1'],
  ['addons.logTarget', 'udp://10.0.2.2:514'],
  ['addons.logTarget', 'tcp://syslog.lab.test:6514'],
  ['addons.ingressDomain', 'mail.example.test'],
  ['libvirt.uri', 'qemu+ssh://root@host.example/system'],
  ['libvirt.bridge', 'br0'],
  ['debian.sourceDateEpoch', 1764547200],
];

test('well-formed values of the same fields load', (t) => {
  for (const [path, value] of WELL_FORMED) t.deepEqual(problemsOf(yamlAt(path, value)), [], `${path}=${JSON.stringify(value)}`);
});

test('the format checks are pure functions with the value in every message', (t) => {
  t.is(cidrProblem('10.42.0.0/16'), undefined);
  t.is(cidrProblem('0.0.0.0/0'), undefined);
  t.is(sizeProblem('4GiB'), undefined);
  t.regex(sizeProblem('4MB')!, /^"4MB" is a decimal unit: .* write 4MiB/);
  t.is(kubernetesMinorProblem('1.37'), undefined);
  t.regex(kubernetesMinorProblem('1.037')!, /not a Kubernetes minor version/);
  t.regex(httpUrlProblem('file:///srv/mirror')!, /^"file:\/\/\/srv\/mirror" uses file/);
});

// --- checks: and forward protocols (issue 14) ---

const CHECKS_YAML = `network:
  forwards:
    smtp: { host: 2525 }
    imaps: { host: 9993 }
    dns: { host: 5353 }
checks:
  - { name: web, type: http, url: "https://www.lab.test/health", status: 200, body: "ok" }
  - { name: imap-banner, type: tcp, port: 9993, banner: "^\\\\* OK" }
  - { name: mail, type: smtp, port: 2525, sendTo: postmaster@lab.test, timeoutSeconds: 10, retries: 0, hint: see the exim log }
  - { name: mx, type: dns, port: 5353, query: lab.test, qtype: MX, expect: ["10 mail.lab.test"] }
  - { name: pods, type: command, run: "kubectl get pods -A", output: "Running" }
`;

test('checks: load with their defaults; well-known forward names get guest port and protocol', (t) => {
  const r = parse(CHECKS_YAML);
  if (!r.ok) return t.fail(r.problems.map((p) => `${p.path}: ${p.message}`).join('\n'));
  t.deepEqual(r.config.network.forwards.filter((f) => ['smtp', 'imaps', 'dns'].includes(f.name)), [
    { name: 'smtp', host: 2525, guest: 25, protocol: 'tcp' },
    { name: 'imaps', host: 9993, guest: 993, protocol: 'tcp' },
    { name: 'dns', host: 5353, guest: 53, protocol: 'both' },
  ]);
  t.is(r.config.network.forwards.find((f) => f.name === 'http')?.protocol, 'tcp');
  t.deepEqual(r.config.checks.map((c) => [c.name, c.type, c.timeoutSeconds, c.retries]), [
    ['web', 'http', 30, 2],
    ['imap-banner', 'tcp', 30, 2],
    ['mail', 'smtp', 10, 0],
    ['mx', 'dns', 30, 2],
    ['pods', 'command', 30, 2],
  ]);
  t.like(r.config.checks[2], { starttls: true, ehlo: 'labsmith.invalid', hint: 'see the exim log' });
  t.like(r.config.checks[3], { transports: ['udp', 'tcp'] });
  t.like(r.config.checks[4], { exitCode: 0 });
  const empty = parse('');
  t.deepEqual(empty.ok ? empty.config.checks : 'not ok', []);
});

test('bad checks are caught at load, each naming its field path', (t) => {
  const problems = problemsOf(`network:
  forwards:
    dns: { host: 5353, protocol: tcp }
checks:
  - { name: a, type: ftp, port: 21 }
  - { name: b, type: http, url: "https://www.lab.test:8443/" }
  - { name: c, type: tcp, port: 2222, banner: "^(SSH" }
  - { name: d, type: dns, port: 5353, query: lab.test, qtype: HINFO, expect: [] }
  - { name: e, type: dns, port: 5353, query: lab.test, expect: [] }
  - { name: c, type: command, run: "true" }
  - { name: f, type: smtp, port: 25 }
`);
  t.deepEqual(problems, [
    'checks.0.type: unknown check type "ftp": use one of http, tcp, smtp, dns, command',
    'checks.2.banner: "^(SSH" is not a regular expression: /^(SSH/: Unterminated group',
    'checks.3.qtype: "HINFO" is not a query type the DNS probe speaks: use one of A, AAAA, MX, TXT, CNAME, NS, SRV, PTR',
    'checks.5.name: "c" is used by an earlier check: check names must be unique',
  ]);
  // Ports are checked once the shape is right (the semantic pass runs on what is well-formed).
  const ports = problemsOf(`network:
  forwards:
    dns: { host: 5353, protocol: tcp }
checks:
  - { name: b, type: http, url: "https://www.lab.test:8443/" }
  - { name: e, type: dns, port: 5353, query: lab.test, expect: [] }
  - { name: f, type: smtp, port: 25 }
  - { name: g, type: http, url: "http://www.lab.test/" }
`);
  t.is(ports.length, 3);
  t.regex(ports[0]!, /^checks\.0\.url: port 8443 is not the host side of any of network\.forwards \(80 \(http, tcp\), 443 \(https, tcp\), 2222 \(ssh, tcp\), 6443 \(apiserver, tcp\), 5353 \(dns, tcp\)\)/);
  t.is(ports[1], 'checks.1.port: port 5353 is forwarded for tcp only, the check needs udp: set network.forwards.dns.protocol: both');
  t.regex(ports[2]!, /^checks\.2\.port: port 25 is not the host side/);
  t.deepEqual(problemsOf('network:\n  forwards:\n    dns: { host: 5353, protocol: sctp }\n'), ['network.forwards.dns.protocol: expected tcp, udp or both, got "sctp"']);
});

test('mail and DNS forwards below 1024 get the same privileged-port handling as 80/443', (t) => {
  const problems = problemsOf('network:\n  forwards:\n    http: { host: 8080 }\n    https: { host: 8443 }\n    smtp: { host: 25 }\n    dns: { host: 53 }\n', { ...NEUTRAL_HOST, isRoot: false });
  t.deepEqual(problems, [
    'network.forwards.smtp.host: port 25 needs root (ports below 1024 are privileged): run as root, or set network.forwards.smtp.host: 8025',
    'network.forwards.dns.host: port 53 needs root (ports below 1024 are privileged): run as root, or set network.forwards.dns.host: 8053',
  ]);
});
