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
}


const ns = TRAEFIK_NAMESPACE;
const labels = { 'app.kubernetes.io/name': 'traefik', ...MANAGED_BY };

export function renderTraefikObjects(opts: TraefikOptions): K8sObject[] {
  const dynamicConfig = stringify({
    tls: { stores: { default: { defaultCertificate: { certFile: '/certs/tls.crt', keyFile: '/certs/tls.key' } } } },
  });
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels } },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'traefik', namespace: ns, labels } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'traefik', labels },
      rules: [
        { apiGroups: [''], resources: ['services', 'secrets', 'nodes'], verbs: ['get', 'list', 'watch'] },
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
