/**
 * The shape of lab.yaml. Every field is optional here (defaults fill the rest), unknown
 * keys are errors, and every field with a format is checked as that format (config/formats.ts)
 * with a message naming the value. The same schema is exported as JSON Schema for editors.
 */
import { z } from 'zod';
import {
  absolutePathProblem,
  cidrProblem,
  dnsLabelProblem,
  dnsNameProblem,
  FORMAT_PATTERNS,
  httpUrlProblem,
  ifnameProblem,
  integerProblem,
  ipv4Problem,
  kubernetesMinorProblem,
  libvirtUriProblem,
  logTargetProblem,
  poolNameProblem,
  sizeProblem,
  stateDirProblem,
} from './formats.ts';
import { DNS_QUERY_TYPES, USER_CHECK_TYPES } from './lab-config.ts';

const shown = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a mapping' : String(v));

/** A string checked by one format function; `pattern` is only for editors. */
function formatted(problemOf: (v: string) => string | undefined, what: string, pattern?: string) {
  const base = z.string({ error: (iss) => `expected ${what}, got ${shown(iss.input)}` }).superRefine((v, ctx) => {
    const problem = problemOf(v);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
  return pattern ? base.meta({ pattern }) : base;
}

/** A string matching a pattern, the message naming the value. */
const matching = (pattern: RegExp, what: string) => formatted((v) => (pattern.test(v) ? undefined : `${JSON.stringify(v)} is not ${what}`), what, pattern.source);

function integer(min: number, max: number, what: string) {
  return z
    .number({ error: (iss) => `expected a whole number (${what}, ${min} to ${max}), got ${shown(iss.input)}` })
    .superRefine((v, ctx) => {
      const problem = integerProblem(v, min, max, what);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .meta({ type: 'integer', minimum: min, maximum: max });
}

const port = integer(1, 65535, 'a TCP port');
const size = formatted(sizeProblem, 'a size such as "4GiB" or "512MiB"', FORMAT_PATTERNS.size);
const cidr = formatted(cidrProblem, 'an IPv4 CIDR such as "10.42.0.0/16"', FORMAT_PATTERNS.cidr);
const ipv4 = formatted(ipv4Problem, 'an IPv4 address such as "127.0.0.1"', FORMAT_PATTERNS.ipv4);
const dnsName = formatted(dnsNameProblem, 'a lowercase DNS name such as "cluster.local"', FORMAT_PATTERNS.dnsName);
const dnsLabel = formatted(dnsLabelProblem, 'a DNS label such as "default"', FORMAT_PATTERNS.dnsLabel);
const httpUrl = formatted(httpUrlProblem, 'an http(s) URL such as "http://deb.debian.org/debian"', FORMAT_PATTERNS.httpUrl);
const boolean = z.boolean({ error: (iss) => `expected true or false, got ${shown(iss.input)}` });
const section = <T extends z.ZodRawShape>(shape: T) => z.object(shape, { error: (iss) => `expected a mapping, got ${shown(iss.input)}` }).strict();

export const forwardSchema = section({
  host: port.describe('port on the host (ports below 1024 need root)'),
  guest: port.optional().describe('port in the VM (defaults per name: http 30080, https 30443, ssh 22, apiserver 6443, smtp 25, submissions 465, submission 587, imaps 993, dns 53)'),
  protocol: z.enum(['tcp', 'udp', 'both'], { error: (iss) => `expected tcp, udp or both, got ${shown(iss.input)}` }).optional().describe('what is forwarded (default tcp; dns: both)'),
});

// --- user checks (lab.yaml `checks:`) ---

/** A regular expression as JavaScript compiles it, the message naming the value. */
const regex = formatted((v) => {
  try {
    new RegExp(v);
    return undefined;
  } catch (error) {
    return `${JSON.stringify(v)} is not a regular expression: ${(error as Error).message.replace(/^Invalid regular expression: /, '')}`;
  }
}, 'a regular expression');
const checkUrl = formatted((v) => {
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    return `${JSON.stringify(v)} is not a URL: write e.g. https://www.lab.test/`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `${JSON.stringify(v)} uses ${url.protocol.replace(/:$/, '')}: an http check takes an http:// or https:// URL`;
  return undefined;
}, 'an http(s) URL such as "https://www.lab.test/"');
const checkBase = {
  name: matching(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'a check name: lowercase letters, digits, dots, dashes and underscores').describe('shown in TAP, JUnit and JSON as user/<name>'),
  timeoutSeconds: integer(1, 3600, 'seconds').optional().describe('budget for all attempts (default 30)'),
  retries: integer(0, 100, 'retries').optional().describe('attempts after the first (default 2)'),
  hint: z.string({ error: (iss) => `expected a hint text, got ${shown(iss.input)}` }).optional().describe('shown when the check fails'),
};
const checkPort = port.describe('a host-side port of one of network.forwards');
const dnsQueryType = z.enum(DNS_QUERY_TYPES, { error: (iss) => `${shown(iss.input)} is not a query type the DNS probe speaks: use one of ${DNS_QUERY_TYPES.join(', ')}` });
const userCheckSchema = z.discriminatedUnion(
  'type',
  [
    section({ type: z.literal('http'), ...checkBase, url: checkUrl.describe('http(s)://NAME[:PORT]/PATH: NAME is sent as Host and SNI, PORT (default 80/443) is a host-side forward'), status: integer(100, 599, 'an HTTP status').optional().describe('default 200'), body: regex.optional().describe('regular expression the body must match') }),
    section({ type: z.literal('tcp'), ...checkBase, port: checkPort, banner: regex.optional().describe('regular expression the first line must match, e.g. "^220"') }),
    section({
      type: z.literal('smtp'),
      ...checkBase,
      port: checkPort,
      tlsName: dnsName.optional().describe('name the STARTTLS certificate is verified against (default the lab domain)'),
      ehlo: dnsName.optional().describe('EHLO name (default labsmith.invalid)'),
      starttls: boolean.optional().describe('require STARTTLS verified against the lab CA (default true)'),
      sendTo: z.email({ error: (iss) => `expected a mail address, got ${shown(iss.input)}` }).optional().describe('send a test message to this local recipient'),
      from: z.email({ error: (iss) => `expected a mail address, got ${shown(iss.input)}` }).optional().describe('envelope sender (default labsmith@labsmith.invalid)'),
    }),
    section({
      type: z.literal('dns'),
      ...checkBase,
      port: checkPort,
      query: dnsName.describe('the name asked for'),
      qtype: dnsQueryType.optional().describe('default A'),
      expect: z.array(z.string(), { error: (iss) => `expected a list of answers, got ${shown(iss.input)}` }).describe('answers as the probe prints them ("192.0.2.1", "10 mail.example.test"), any order; [] expects NXDOMAIN'),
      transports: z.array(z.enum(['udp', 'tcp'], { error: (iss) => `expected udp or tcp, got ${shown(iss.input)}` })).min(1).optional().describe('default [udp, tcp]'),
    }),
    section({ type: z.literal('command'), ...checkBase, run: z.string({ error: (iss) => `expected a command line, got ${shown(iss.input)}` }).min(1).describe('run with sh -c in the guest over SSH'), exitCode: integer(0, 255, 'an exit code').optional().describe('default 0'), output: regex.optional().describe('regular expression stdout must match') }),
  ],
  { error: (iss) => (iss.code === 'invalid_union' ? `unknown check type ${shown((iss.input as { type?: unknown } | undefined)?.type)}: use one of ${USER_CHECK_TYPES.join(', ')}` : undefined) },
);
/** Duplicate names are reported even when another check is malformed (`when`: run despite earlier issues). */
const userChecksSchema = z
  .array(userCheckSchema, { error: (iss) => `expected a list of checks, got ${shown(iss.input)}` })
  .superRefine(
    (checks: unknown, ctx) => {
      if (!Array.isArray(checks)) return;
      const seen = new Set<unknown>();
      checks.forEach((c: unknown, i) => {
        const name = typeof c === 'object' && c !== null ? (c as { name?: unknown }).name : undefined;
        if (typeof name !== 'string') return;
        if (seen.has(name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `${JSON.stringify(name)} is used by an earlier check: check names must be unique` });
        seen.add(name);
      });
    },
    { when: (payload) => Array.isArray(payload.value) },
  );

// --- registries (lab.yaml `registries:`) ---

/** host[:port]: what an image reference starts with, and the certs.d directory name. */
export const REGISTRY_HOST_PATTERN = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$/;
/** Exactly one of a host file or an environment variable. */
const secretSource = section({
  file: z.string().min(1).optional().describe('a host file holding the value (relative to lab.yaml)'),
  env: matching(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name').optional().describe('an environment variable of the labsmith process'),
}).refine((v) => (v.file === undefined) !== (v.env === undefined), { message: 'give exactly one of file or env' });

// Restore on new hardware (issue 11): the server profile.
const macAddress = z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/, 'a lowercase MAC address such as "52:54:00:12:34:56"');
const staticAddress = z
  .object({
    address: z.string().describe('address with prefix length, e.g. 203.0.113.10/24 or 2001:db8::10/64'),
    gateway: z.string().optional().describe('the default gateway (required)'),
  })
  .strict();
const serverSchema = z
  .object({
    hostname: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'a host name without dots').optional().describe('default: name'),
    domain: dnsName.describe('the production domain: the FQDN is <hostname>.<domain>'),
    network: z
      .object({
        match: z
          .object({ macAddress: macAddress.optional() })
          .strict()
          .describe('the NIC by MAC address (never by an interface name, which changes with the hardware)'),
        ipv4: staticAddress.optional(),
        ipv6: staticAddress.optional(),
        dns: z.object({ servers: z.array(z.string()).optional(), search: z.array(dnsName).optional() }).strict().optional(),
      })
      .strict(),
    authorizedKeyFiles: z.array(z.string()).optional().describe("files of the user's own SSH public keys (required)"),
    letsEncrypt: z
      .object({
        email: z.string().regex(/^[^@\s]+@[^@\s]+$/, 'an email address'),
        server: z.enum(['production', 'staging']).optional(),
        solver: z.discriminatedUnion('type', [
          z.object({ type: z.literal('http01'), ingressClass: z.string().optional() }).strict(),
          z.object({ type: z.literal('dns01-rfc2136'), nameserver: z.string(), tsigKeyName: z.string(), tsigSecretName: z.string(), tsigAlgorithm: z.string().optional() }).strict(),
        ]),
        names: z.array(dnsName).optional().describe('HTTP-01 certificate names (default: the domain)'),
      })
      .strict()
      .optional(),
    logTarget: formatted(logTargetProblem, 'udp://HOST:PORT or tcp://HOST:PORT', FORMAT_PATTERNS.logTarget).optional(),
  })
  .strict();

export const labConfigSchema = z
  .object({
    name: matching(/^[a-z][a-z0-9-]{0,30}[a-z0-9]$/, 'a lab name: lowercase letters, digits and dashes, 2 to 32 characters, starting with a letter')
      .optional()
      .describe('lab name: state directory, VM hostname and lock are named after it'),
    stateDir: formatted(stateDirProblem, 'an absolute path', FORMAT_PATTERNS.absolutePath).optional().describe('where the lab keeps its disk overlay, seed, keys and logs (default: $XDG_STATE_HOME/labsmith/<name>)'),
    debian: section({
      suite: matching(/^[a-z]+$/, 'a Debian suite name such as "trixie"').optional(),
      mirror: httpUrl.optional(),
      securityMirror: httpUrl.optional(),
      sourceDateEpoch: integer(0, 2 ** 32 - 1, 'seconds since 1970').optional().describe('fixed build time; default: the newest mirror Release date'),
      snapshot: matching(/^\d{8}T\d{6}Z$/, 'a snapshot.debian.org moment such as "20261201T091544Z"').optional().describe('take the suites from snapshot.debian.org at this moment (YYYYMMDDTHHMMSSZ): rebuilds an old lock without an input archive'),
    }).optional(),
    vm: section({
      cpus: integer(1, 64, 'the number of CPUs').optional(),
      memory: size.optional(),
      disk: size.optional(),
      accel: z.enum(['auto', 'kvm', 'tcg'], { error: (iss) => `expected auto, kvm or tcg, got ${shown(iss.input)}` }).optional().describe('auto: KVM when a trial boot proves it works, else TCG'),
      boot: z.enum(['uefi', 'direct'], { error: (iss) => `expected uefi or direct, got ${shown(iss.input)}` }).optional().describe('direct: qemu boots the image\'s own kernel and initramfs (no firmware or GRUB, a lab only); uefi: from the disk by UEFI, as a server does'),
    }).optional(),
    network: section({
      hostAddress: ipv4.optional().describe('host address forwarded ports listen on'),
      forwards: z.record(matching(/^[a-z][a-z0-9-]*$/, 'a forward name: lowercase letters, digits and dashes'), forwardSchema, { error: (iss) => `expected a mapping of forward names to {host, guest}, got ${shown(iss.input)}` }).optional(),
    }).optional(),
    kubernetes: section({
      version: formatted(kubernetesMinorProblem, 'a Kubernetes minor version such as "1.37"', FORMAT_PATTERNS.kubernetesMinor).optional(),
      dnsDomain: dnsName.optional(),
      podSubnet: cidr.optional(),
      serviceSubnet: cidr.optional(),
      enabled: boolean.optional().describe('false: an OS-only image and lab (no Kubernetes packages or images; cluster checks report not ok)'),
      containerd: z.enum(['1.7', '2'], { error: (iss) => `expected "1.7" or "2" (quoted), got ${shown(iss.input)}` }).optional()
        .describe('1.7: the Debian suite\'s containerd; 2: the pinned Debian forky containerd 2 from the lock (image:lock --kubernetes), needed from Kubernetes 1.38'),
    }).optional(),
    addons: section({
      ingressDomain: dnsName.optional().describe('the lab domain: the ingress serves a wildcard certificate for *.<ingressDomain> (default <name>.test)'),
      storageDir: formatted((v) => absolutePathProblem(v, 'VM'), 'an absolute path in the VM', FORMAT_PATTERNS.absolutePath).optional().describe('where local-path volumes live in the VM, one directory per PVC (default /var/lib/labsmith/volumes)'),
      logTarget: formatted(logTargetProblem, 'udp://HOST:PORT or tcp://HOST:PORT', FORMAT_PATTERNS.logTarget)
        .optional()
        .describe('syslog target for container logs, e.g. udp://192.0.2.10:514; no forwarding when unset'),
      policyNamespaces: z.array(dnsLabel, { error: (iss) => `expected a list of namespace names, got ${shown(iss.input)}` }).optional().describe('namespaces that get the egress-dns and egress-https NetworkPolicies (default [default])'),
      defaultDenyEgress: boolean.optional().describe('also deny all other egress in those namespaces (default false)'),
    }).optional(),
    libvirt: section({
      uri: formatted(libvirtUriProblem, 'a libvirt URI such as "qemu:///system"', FORMAT_PATTERNS.libvirtUri).optional().describe('libvirt connection (default qemu:///system)'),
      pool: formatted(poolNameProblem, 'a storage pool name').optional().describe('storage pool for the lab volumes (default "default")'),
      networkMode: z.enum(['nat', 'bridge'], { error: (iss) => `expected nat or bridge, got ${shown(iss.input)}` }).optional().describe('nat: a lab network with host port forwarding; bridge: the VM joins an existing bridge (server profile)'),
      subnet: cidr.optional().describe('the NAT network (default 192.168.150.0/24); the VM gets its .10'),
      bridge: formatted(ifnameProblem, 'a bridge interface name such as "br0"', FORMAT_PATTERNS.ifname).optional().describe('existing host bridge for networkMode bridge, e.g. br0'),
    }).optional().describe('settings for --driver libvirt'),
    checks: userChecksSchema.optional().describe('your own checks, run by test:e2e after the built-in suite'),
    ssh: section({
      user: matching(/^[a-z_][a-z0-9_-]{0,30}$/, 'a Linux user name: lowercase letters, digits, dashes and underscores, at most 31').optional(),
    }).optional(),
    // Restore on new hardware (issue 11).
    server: serverSchema.optional().describe('the real server: server:seed renders its first boot (static address matched by MAC or driver, own SSH keys, Let\'s Encrypt, its syslog target)'),
    backup: z
      .object({
        preBackup: z
          .array(
            z
              .object({
                namespace: dnsName,
                target: z.string().min(1).describe('what kubectl exec runs in, e.g. deploy/postgres'),
                container: z.string().optional(),
                command: z.array(z.string()).min(1).describe('argv, e.g. ["sh", "-c", "pg_dumpall > /var/lib/postgresql/data/dump.sql"]'),
              })
              .strict(),
          )
          .optional()
          .describe('commands lab:backup runs first, per namespace: file copies of a live database are not consistent'),
      })
      .strict()
      .optional(),
    // A replica of your server (issue 14).
    workloads: z
      .array(
        z
          .object({
            name: dnsLabel.optional().describe('for messages; default the directory name'),
            path: z.string().min(1).describe('a directory of manifests (plain YAML files or a kustomization.yaml), relative to lab.yaml'),
            images: z.array(z.string().min(1)).optional().describe('image references the manifests run: locked by digest and baked into the image'),
            secrets: z
              .array(
                z
                  .object({
                    name: dnsName,
                    namespace: dnsLabel,
                    type: z.string().optional().describe('default Opaque'),
                    data: z.record(z.string().min(1), z.object({ file: z.string().min(1).optional(), env: z.string().min(1).optional() }).strict()).describe('key: {file} or {env}'),
                  })
                  .strict(),
              )
              .optional()
              .describe('secrets the manifests need, from host files or environment variables; never logged'),
            rolloutTimeoutSeconds: z.number().int().positive().optional().describe('per rollout (default 300)'),
          })
          .strict(),
      )
      .optional()
      .describe('your manifests, applied in order after the cluster bootstrap with server-side apply'),
    registries: z
      .array(
        section({
          host: matching(REGISTRY_HOST_PATTERN, 'a registry host[:port] such as "registry.example.com:5000" (lowercase, no scheme or path)').describe('host[:port] as your image references name it'),
          ca: z.string({ error: (iss) => `expected a file path, got ${shown(iss.input)}` }).min(1).optional().describe("PEM file of the CA that signed the registry's certificate (relative to lab.yaml)"),
          mirrorOf: matching(REGISTRY_HOST_PATTERN, 'a registry host such as "docker.io"').optional().describe('a registry this one mirrors, e.g. docker.io: its images are pulled from here first'),
          credentials: section({
            username: z.union([z.string().min(1), secretSource], { error: (iss) => `expected a user name, {file} or {env}, got ${shown(iss.input)}` }).describe('a user name, or {file: PATH} / {env: VAR}'),
            password: secretSource.describe('{file: PATH} or {env: VAR}: never written into lab.yaml'),
          })
            .optional()
            .describe('for the kubelet: /var/lib/kubelet/config.json in the guest, 0600'),
        }),
        { error: (iss) => `expected a list of registries, got ${shown(iss.input)}` },
      )
      .optional()
      .describe('your registries: containerd certs.d/<host>/hosts.toml with their CA (read at each pull, no restart), credentials owner-only'),
  })
  .strict();

export type LabConfigInput = z.infer<typeof labConfigSchema>;

export function renderLabConfigJsonSchema(): string {
  const schema = z.toJSONSchema(labConfigSchema, { target: 'draft-2020-12' }) as Record<string, unknown>;
  return JSON.stringify({ ...schema, $id: 'https://labsmith.invalid/lab.schema.json', title: 'labsmith lab.yaml' }, null, 2) + '\n';
}
