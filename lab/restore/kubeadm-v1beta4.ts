/**
 * The kubeadm.k8s.io/v1beta4 types a restore renders (InitConfiguration, ClusterConfiguration),
 * as strict schemas: field names and shapes as kubeadm's Go types define them
 * (cmd/kubeadm/app/apis/kubeadm/v1beta4/types.go), unknown fields rejected the way kubeadm's
 * strict decoding rejects them. Used to check rendered restore configs (there is no kubeadm here).
 */
import { z } from 'zod';

const arg = z.object({ name: z.string(), value: z.string() }).strict();
const args = z.array(arg);
const taint = z.object({ key: z.string(), value: z.string().optional(), effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']), timeAdded: z.string().optional() }).strict();
const hostPathMount = z.object({ name: z.string(), hostPath: z.string(), mountPath: z.string(), readOnly: z.boolean().optional(), pathType: z.string().optional() }).strict();
const controlPlaneComponent = z.object({ extraArgs: args.optional(), extraVolumes: z.array(hostPathMount).optional(), extraEnvs: z.array(z.object({ name: z.string(), value: z.string().optional() }).passthrough()).optional() }).strict();
const apiEndpoint = z.object({ advertiseAddress: z.string().optional(), bindPort: z.number().int().optional() }).strict();

export const nodeRegistrationV1beta4 = z
  .object({
    name: z.string().optional(),
    criSocket: z.string().optional(),
    taints: z.array(taint).optional(),
    kubeletExtraArgs: args.optional(),
    ignorePreflightErrors: z.array(z.string()).optional(),
    imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).optional(),
    imagePullSerial: z.boolean().optional(),
  })
  .strict();

export const initConfigurationV1beta4 = z
  .object({
    apiVersion: z.literal('kubeadm.k8s.io/v1beta4'),
    kind: z.literal('InitConfiguration'),
    bootstrapTokens: z.array(z.object({}).passthrough()).optional(),
    dryRun: z.boolean().optional(),
    nodeRegistration: nodeRegistrationV1beta4.optional(),
    localAPIEndpoint: apiEndpoint.optional(),
    certificateKey: z.string().optional(),
    skipPhases: z.array(z.string()).optional(),
    patches: z.object({ directory: z.string().optional() }).strict().optional(),
    timeouts: z.record(z.string(), z.string()).optional(),
  })
  .strict();

export const clusterConfigurationV1beta4 = z
  .object({
    apiVersion: z.literal('kubeadm.k8s.io/v1beta4'),
    kind: z.literal('ClusterConfiguration'),
    etcd: z
      .object({
        local: z.object({ imageRepository: z.string().optional(), imageTag: z.string().optional(), dataDir: z.string().optional(), extraArgs: args.optional(), extraEnvs: z.array(z.object({}).passthrough()).optional(), serverCertSANs: z.array(z.string()).optional(), peerCertSANs: z.array(z.string()).optional() }).strict().optional(),
        external: z.object({ endpoints: z.array(z.string()), caFile: z.string(), certFile: z.string(), keyFile: z.string() }).strict().optional(),
      })
      .strict()
      .optional(),
    networking: z.object({ serviceSubnet: z.string().optional(), podSubnet: z.string().optional(), dnsDomain: z.string().optional() }).strict().optional(),
    kubernetesVersion: z.string().optional(),
    controlPlaneEndpoint: z.string().optional(),
    apiServer: controlPlaneComponent.extend({ certSANs: z.array(z.string()).optional() }).strict().optional(),
    controllerManager: controlPlaneComponent.optional(),
    scheduler: controlPlaneComponent.optional(),
    dns: z.object({ imageRepository: z.string().optional(), imageTag: z.string().optional(), disabled: z.boolean().optional() }).strict().optional(),
    proxy: z.object({ disabled: z.boolean().optional() }).strict().optional(),
    certificatesDir: z.string().optional(),
    imageRepository: z.string().optional(),
    featureGates: z.record(z.string(), z.boolean()).optional(),
    clusterName: z.string().optional(),
    encryptionAlgorithm: z.enum(['RSA-2048', 'RSA-3072', 'RSA-4096', 'ECDSA-P256', 'ECDSA-P384']).optional(),
    certificateValidityPeriod: z.string().optional(),
    caCertificateValidityPeriod: z.string().optional(),
  })
  .strict();

/** Every problem of a multi-document kubeadm config, by document kind and field path (pure). */
export function validateKubeadmV1beta4(docs: unknown[]): string[] {
  const problems: string[] = [];
  for (const doc of docs) {
    const kind = (doc as { kind?: string })?.kind;
    const schema = kind === 'InitConfiguration' ? initConfigurationV1beta4 : kind === 'ClusterConfiguration' ? clusterConfigurationV1beta4 : undefined;
    if (!schema) continue;
    const r = schema.safeParse(doc);
    if (!r.success) for (const i of r.error.issues) problems.push(`${kind}.${i.path.join('.')}: ${i.message}`);
  }
  return problems;
}
