/**
 * The ingress controller (pure): Traefik v3.7 (ingress-nginx is retired) as a Deployment
 * watching Ingress resources, exposed by a NodePort Service on the pinned nodePorts the host
 * forwards 80/443 to. Unmatched hosts get Traefik's own 404; the default certificate is the
 * lab's wildcard certificate, served through Traefik's file provider (no Traefik CRDs needed).
 */
import { stringify } from 'yaml';
import { WILDCARD_SECRET } from './cert-manager.ts';
import { MANAGED_BY, type K8sObject } from './k8s-object.ts';

export const TRAEFIK_NAMESPACE = 'traefik';

export interface TraefikOptions {
  /** Image reference, pinned by digest from the lock file. */
  image: string;
  httpNodePort: number;
  httpsNodePort: number;
  /**
   * The namespaces whose Ingresses Traefik serves, and the only ones where it may read Secrets.
   * Its Ingress provider keeps an informer on Secrets in every namespace it watches (for Ingress
   * TLS secrets; traefik/traefik#7097): watching all namespaces would need list/watch on every
   * Secret in the cluster, and resourceNames cannot narrow a list (traefik-helm-chart#1653).
   * Default: `default`.
   */
  ingressNamespaces?: string[];
}

/** Namespaces Kubernetes creates itself: never declared here. */
const BUILT_IN_NAMESPACES = new Set(['default', 'kube-system', 'kube-public', 'kube-node-lease']);


const ns = TRAEFIK_NAMESPACE;
const labels = { 'app.kubernetes.io/name': 'traefik', ...MANAGED_BY };

export function renderTraefikObjects(opts: TraefikOptions): K8sObject[] {
  const dynamicConfig = stringify({
    tls: { stores: { default: { defaultCertificate: { certFile: '/certs/tls.crt', keyFile: '/certs/tls.key' } } } },
  });
  const watched = [...new Set(opts.ingressNamespaces ?? ['default'])].sort();
  if (watched.length === 0) throw new Error('Traefik needs at least one namespace to serve Ingresses from');
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels } },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'traefik', namespace: ns, labels } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'traefik', labels },
      // No Secrets here: those are granted per watched namespace below.
      rules: [
        { apiGroups: [''], resources: ['services', 'nodes'], verbs: ['get', 'list', 'watch'] },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list', 'watch'] },
        { apiGroups: ['networking.k8s.io'], resources: ['ingresses', 'ingressclasses'], verbs: ['get', 'list', 'watch'] },
        { apiGroups: ['networking.k8s.io'], resources: ['ingresses/status'], verbs: ['update'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'traefik', labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'traefik' },
      subjects: [{ kind: 'ServiceAccount', name: 'traefik', namespace: ns }],
    },
    ...watched.filter((n) => !BUILT_IN_NAMESPACES.has(n) && n !== ns).map((n): K8sObject => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: n, labels: { ...MANAGED_BY } } })),
    ...watched.flatMap((n): K8sObject[] => [
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: { name: 'traefik-ingress-secrets', namespace: n, labels },
        // list and watch: Traefik's informer lists the namespace's Secrets (no resourceNames possible for a list).
        rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch'] }],
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: 'traefik-ingress-secrets', namespace: n, labels },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'traefik-ingress-secrets' },
        subjects: [{ kind: 'ServiceAccount', name: 'traefik', namespace: ns }],
      },
    ]),
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'IngressClass',
      metadata: { name: 'traefik', labels, annotations: { 'ingressclass.kubernetes.io/is-default-class': 'true' } },
      spec: { controller: 'traefik.io/ingress-controller' },
    },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'traefik-dynamic', namespace: ns, labels }, data: { 'tls.yml': dynamicConfig } },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'traefik', namespace: ns, labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: { 'app.kubernetes.io/name': 'traefik' } },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: 'traefik',
            containers: [
              {
                name: 'traefik',
                image: opts.image,
                args: [
                  '--entryPoints.web.address=:8000',
                  '--entryPoints.websecure.address=:8443',
                  '--entryPoints.websecure.http.tls=true',
                  '--providers.kubernetesingress=true',
                  '--providers.kubernetesingress.ingressclass=traefik',
                  `--providers.kubernetesingress.namespaces=${watched.join(',')}`,
                  '--providers.file.filename=/config/tls.yml',
                  '--ping=true',
                  '--log.level=INFO',
                ],
                ports: [
                  { name: 'web', containerPort: 8000 },
                  { name: 'websecure', containerPort: 8443 },
                ],
                readinessProbe: { httpGet: { path: '/ping', port: 8080 }, periodSeconds: 5 },
                securityContext: { runAsNonRoot: true, runAsUser: 65532, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
                volumeMounts: [
                  { name: 'dynamic', mountPath: '/config', readOnly: true },
                  { name: 'default-cert', mountPath: '/certs', readOnly: true },
                ],
              },
            ],
            volumes: [
              { name: 'dynamic', configMap: { name: 'traefik-dynamic' } },
              // Issued by cert-manager (lab-wildcard Certificate) into this namespace.
              { name: 'default-cert', secret: { secretName: WILDCARD_SECRET } },
            ],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'traefik', namespace: ns, labels },
      spec: {
        type: 'NodePort',
        selector: { 'app.kubernetes.io/name': 'traefik' },
        ports: [
          { name: 'web', port: 80, targetPort: 'web', nodePort: opts.httpNodePort, protocol: 'TCP' },
          { name: 'websecure', port: 443, targetPort: 'websecure', nodePort: opts.httpsNodePort, protocol: 'TCP' },
        ],
      },
    },
  ];
}
