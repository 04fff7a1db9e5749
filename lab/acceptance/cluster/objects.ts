/**
 * The objects the acceptance suite creates (pure): two namespaces (one plain, one under the
 * production egress policies with default-deny), an echo backend with its Service and Ingress in
 * the namespace Traefik serves for the suite (made by the cluster bootstrap, shared by runs, so
 * the echo objects carry the run id in their names), and short-lived probe pods. Only the pinned test images baked into the image are used, with
 * imagePullPolicy Never: the suite never pulls from a registry.
 */
import { ACCEPTANCE_IMAGES, ACCEPTANCE_INGRESS_NAMESPACE, LOCAL_PATH_HELPER_IMAGE } from '../../../cloud-init/addons/bundle.ts';
import { renderEgressPolicies } from '../../../cloud-init/addons/network-policies.ts';
import { resourcePath, type KubeObject } from '../../kube/client.ts';

export const AGNHOST_IMAGE = ACCEPTANCE_IMAGES[0];
/** busybox is in the image already (local-path's helper): nslookup, wget and a shell. */
export const BUSYBOX_IMAGE = LOCAL_PATH_HELPER_IMAGE;
const SUITE_LABEL = { 'app.kubernetes.io/managed-by': 'labsmith-e2e' } as const;
export const ECHO = { name: 'echo', port: 8080, servicePort: 80 } as const;
export const POLICY_LABELS = { dns: { 'egress-dns': 'true' }, https: { 'egress-https': 'true' } } as const;

export interface SuiteNamespaces {
  /** No policies: positive controls, storage, logs. */
  plain: string;
  /** The production egress policies plus default-deny. */
  egress: string;
  /**
   * The echo backend's: one of the namespaces Traefik watches (it is limited to them). The
   * cluster bootstrap makes it and Traefik's Role in it, so the suite neither creates nor deletes it.
   */
  ingress: string;
}

export function suiteNamespaces(runId: string): SuiteNamespaces {
  return { plain: `labsmith-e2e-${runId}`, egress: `labsmith-e2e-${runId}-egress`, ingress: ACCEPTANCE_INGRESS_NAMESPACE };
}

/** This run's echo backend: Deployment, Service and Ingress share the name; its pods carry the selector's label. */
export interface EchoRef {
  namespace: string;
  name: string;
  /** Only this run's echo pods (other runs share the namespace). */
  labels: Record<string, string>;
  /** `labels` as a labelSelector query value (not yet URL-encoded). */
  labelSelector: string;
}

export function echoRef(runId: string): EchoRef {
  const name = `${ECHO.name}-${runId}`;
  const labels = { app: ECHO.name, 'app.kubernetes.io/instance': name };
  return { namespace: ACCEPTANCE_INGRESS_NAMESPACE, name, labels, labelSelector: Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',') };
}

export function renderNamespace(name: string): KubeObject {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { ...SUITE_LABEL } } };
}

/** The API path that lists this run's echo pods. */
export const echoPodsPath = (echo: EchoRef) => `${resourcePath('v1', 'Pod', echo.namespace)}?labelSelector=${encodeURIComponent(echo.labelSelector)}`;

/** agnhost netexec answers /hostname with its pod name: a 200 from it proves which backend answered. */
export function renderEchoObjects(echo: EchoRef, host: string): KubeObject[] {
  const { namespace, name } = echo;
  const labels = { ...echo.labels, ...SUITE_LABEL };
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace, labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: echo.labels },
        template: {
          metadata: { labels },
          spec: {
            containers: [
              {
                name: 'netexec',
                image: AGNHOST_IMAGE,
                imagePullPolicy: 'Never',
                args: ['netexec', `--http-port=${ECHO.port}`],
                ports: [{ containerPort: ECHO.port }],
                readinessProbe: { httpGet: { path: '/healthz', port: ECHO.port }, periodSeconds: 2 },
              },
            ],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace, labels },
      spec: { selector: echo.labels, ports: [{ name: 'http', port: ECHO.servicePort, targetPort: ECHO.port }] },
    },
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name, namespace, labels },
      spec: {
        ingressClassName: 'traefik',
        rules: [{ host, http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name, port: { number: ECHO.servicePort } } } }] } }],
      },
    },
  ];
}

/** The production policies in the suite's egress namespace, with default-deny so unlabelled pods are blocked. */
export function renderSuitePolicies(namespace: string): KubeObject[] {
  return renderEgressPolicies(namespace, { defaultDeny: true }).map((p) => ({ ...p, metadata: { ...p.metadata, labels: { ...p.metadata.labels, ...SUITE_LABEL } } }) as KubeObject);
}

export interface ProbePodSpec {
  name: string;
  namespace: string;
  labels?: Record<string, string>;
  image: string;
  command: string[];
  volumes?: { name: string; claim: string; mountPath: string }[];
}

export function renderProbePod(spec: ProbePodSpec): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: spec.name, namespace: spec.namespace, labels: { ...SUITE_LABEL, ...spec.labels } },
    spec: {
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 0,
      automountServiceAccountToken: false,
      containers: [
        {
          name: 'probe',
          image: spec.image,
          imagePullPolicy: 'Never',
          command: spec.command,
          ...(spec.volumes ? { volumeMounts: spec.volumes.map((v) => ({ name: v.name, mountPath: v.mountPath })) } : {}),
        },
      ],
      ...(spec.volumes ? { volumes: spec.volumes.map((v) => ({ name: v.name, persistentVolumeClaim: { claimName: v.claim } })) } : {}),
    },
  };
}

/** One TCP connection attempt; agnhost prints TIMEOUT, REFUSED, DNS or OTHER and exits 1 when it fails. */
export function connectCommand(host: string, port: number | string, timeoutSeconds = 5): string[] {
  return ['/agnhost', 'connect', `${host}:${port}`, `--timeout=${timeoutSeconds}s`];
}

/** A DNS A query over UDP to one server. */
export function nslookupCommand(name: string, server: string): string[] {
  return ['nslookup', '-type=a', name, server];
}

export function renderClaim(namespace: string, name: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name, namespace, labels: { ...SUITE_LABEL } },
    // No storageClassName: the default StorageClass must take it.
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '64Mi' } } },
  };
}

export type ConnectOutcome = 'connected' | 'timeout' | 'refused' | 'dns' | 'other' | 'unknown';

/**
 * What a connect probe saw. A policy drops packets, so "blocked" is a timeout; a refusal means the
 * packet reached its target, which for a blocked destination is a leak.
 */
export function classifyConnect(exitCode: number | undefined, logs: string): ConnectOutcome {
  if (exitCode === 0) return 'connected';
  const text = logs.trim();
  if (/^TIMEOUT/m.test(text)) return 'timeout';
  if (/^REFUSED/m.test(text)) return 'refused';
  if (/^DNS/m.test(text)) return 'dns';
  if (/^OTHER/m.test(text)) return 'other';
  return 'unknown';
}

/** busybox nslookup: the addresses of the answer, or none when it timed out or failed. */
export function parseNslookup(exitCode: number | undefined, logs: string, name: string): { answered: boolean; addresses: string[] } {
  const afterName = logs.split(/\n(?=Name:)/).filter((block) => block.includes(name.replace(/\.$/, '')));
  const addresses = afterName.flatMap((b) => [...b.matchAll(/^Address(?:\s+\d+)?:\s*([\d.]+)\s*$/gm)].map((m) => m[1]!));
  return { answered: exitCode === 0 && addresses.length > 0, addresses };
}
