/**
 * The shape of lab.yaml. Every field is optional here (defaults fill the rest), unknown
 * keys are errors, and the same schema is exported as JSON Schema for editors.
 */
import { z } from 'zod';
import { LOG_TARGET_PATTERN } from './lab-config.ts';

const port = z.number().int().min(1).max(65535);
const size = z.string().regex(/^\d+(\.\d+)?\s*(K|M|G|T|KiB|MiB|GiB|TiB)$/i, 'a size such as "4GiB" or "512MiB"');
const cidr = z.string().regex(/^\d+\.\d+\.\d+\.\d+\/\d{1,2}$/, 'an IPv4 CIDR such as "10.42.0.0/16"');
const ipv4 = z.string().regex(/^\d+\.\d+\.\d+\.\d+$/, 'an IPv4 address such as "127.0.0.1"');
const dnsName = z.string().regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/, 'a lowercase DNS name such as "cluster.local"');

export const forwardSchema = z
  .object({
    host: port.describe('port on the host (ports below 1024 need root)'),
    guest: port.optional().describe('port in the VM (defaults per name: http 30080, https 30443, ssh 22, apiserver 6443)'),
  })
  .strict();

export const labConfigSchema = z
  .object({
    name: z
      .string()
      .regex(/^[a-z][a-z0-9-]{0,30}[a-z0-9]$/, 'lowercase letters, digits and dashes, 2 to 32 characters, starting with a letter')
      .optional()
      .describe('lab name: state directory, VM hostname and lock are named after it'),
    stateDir: z.string().optional().describe('where the lab keeps its disk overlay, seed, keys and logs (default: $XDG_STATE_HOME/labsmith/<name>)'),
    debian: z
      .object({
        suite: z.string().regex(/^[a-z]+$/, 'a Debian suite name such as "trixie"').optional(),
        mirror: z.url().optional(),
        securityMirror: z.url().optional(),
        sourceDateEpoch: z.number().int().min(0).optional().describe('fixed build time; default: the newest mirror Release date'),
        snapshot: z.string().regex(/^\d{8}T\d{6}Z$/, 'a snapshot.debian.org moment such as "20261201T091544Z"').optional().describe('take the suites from snapshot.debian.org at this moment (YYYYMMDDTHHMMSSZ): rebuild an old lock without an archive'),
      })
      .strict()
      .optional(),
    vm: z
      .object({
        cpus: z.number().int().min(1).max(64).optional(),
        memory: size.optional(),
        disk: size.optional(),
        accel: z.enum(['auto', 'kvm', 'tcg']).optional().describe('auto: KVM when a trial boot proves it works, else TCG'),
      })
      .strict()
      .optional(),
    network: z
      .object({
        hostAddress: ipv4.optional().describe('host address forwarded ports listen on'),
        forwards: z.record(z.string().regex(/^[a-z][a-z0-9-]*$/, 'a lowercase name'), forwardSchema).optional(),
      })
      .strict()
      .optional(),
    kubernetes: z
      .object({
        version: z.string().regex(/^1\.\d+$/, 'a Kubernetes minor version such as "1.37"').optional(),
        dnsDomain: dnsName.optional(),
        podSubnet: cidr.optional(),
        serviceSubnet: cidr.optional(),
        enabled: z.boolean().optional().describe('false: an OS-only image and lab (no Kubernetes packages or images; cluster checks report not ok)'),
      })
      .strict()
      .optional(),
    addons: z
      .object({
        ingressDomain: dnsName.optional().describe('the lab domain: the ingress serves a wildcard certificate for *.<ingressDomain> (default <name>.test)'),
        storageDir: z.string().regex(/^\/[^\s]*$/, 'an absolute path in the VM').optional().describe('where local-path volumes live in the VM, one directory per PVC (default /var/lib/labsmith/volumes)'),
        logTarget: z
          .string()
          .regex(LOG_TARGET_PATTERN, 'udp://HOST:PORT or tcp://HOST:PORT')
          .optional()
          .describe('syslog target for container logs, e.g. udp://192.0.2.10:514; no forwarding when unset'),
        policyNamespaces: z.array(dnsName).optional().describe('namespaces that get the egress-dns and egress-https NetworkPolicies (default [default])'),
        defaultDenyEgress: z.boolean().optional().describe('also deny all other egress in those namespaces (default false)'),
      })
      .strict()
      .optional(),
    libvirt: z
      .object({
        uri: z.string().optional().describe('libvirt connection (default qemu:///system)'),
        pool: z.string().optional().describe('storage pool for the lab volumes (default "default")'),
        networkMode: z.enum(['nat', 'bridge']).optional().describe('nat: a lab network with host port forwarding; bridge: the VM joins an existing bridge (server profile)'),
        subnet: cidr.optional().describe('the NAT network (default 192.168.150.0/24); the VM gets its .10'),
        bridge: z.string().optional().describe('existing host bridge for networkMode bridge, e.g. br0'),
      })
      .strict()
      .optional()
      .describe('settings for --driver libvirt'),
    ssh: z
      .object({
        user: z.string().regex(/^[a-z_][a-z0-9_-]{0,30}$/, 'a Linux user name').optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export type LabConfigInput = z.infer<typeof labConfigSchema>;

export function renderLabConfigJsonSchema(): string {
  const schema = z.toJSONSchema(labConfigSchema, { target: 'draft-2020-12' }) as Record<string, unknown>;
  return JSON.stringify({ ...schema, $id: 'https://labsmith.invalid/lab.schema.json', title: 'labsmith lab.yaml' }, null, 2) + '\n';
}
