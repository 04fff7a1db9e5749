/**
 * The production server's egress NetworkPolicies (pure): pods labelled egress-dns may reach
 * kube-dns on 53/UDP and 53/TCP; pods labelled egress-https may reach TCP 443 anywhere but
 * the private ranges. Optional default-deny egress per namespace.
 */

import { MANAGED_BY } from './k8s-object.ts';

export const PRIVATE_RANGES = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'] as const;

export interface NetworkPolicyObject {
  apiVersion: 'networking.k8s.io/v1';
  kind: 'NetworkPolicy';
  metadata: { name: string; namespace: string; labels: Record<string, string> };
  spec: Record<string, unknown>;
}

const labels = { ...MANAGED_BY };

export function renderEgressPolicies(namespace: string, opts: { defaultDeny?: boolean } = {}): NetworkPolicyObject[] {
  const policies: NetworkPolicyObject[] = [
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'egress-dns', namespace, labels },
      spec: {
        podSelector: { matchLabels: { 'egress-dns': 'true' } },
        policyTypes: ['Egress'],
        egress: [
          {
            to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
            ports: [
              { protocol: 'UDP', port: 53 },
              { protocol: 'TCP', port: 53 },
            ],
          },
        ],
      },
    },
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'egress-https', namespace, labels },
      spec: {
        podSelector: { matchLabels: { 'egress-https': 'true' } },
        policyTypes: ['Egress'],
        egress: [{ to: [{ ipBlock: { cidr: '0.0.0.0/0', except: [...PRIVATE_RANGES] } }], ports: [{ protocol: 'TCP', port: 443 }] }],
      },
    },
  ];
  if (opts.defaultDeny) {
    policies.push({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'default-deny-egress', namespace, labels },
      spec: { podSelector: {}, policyTypes: ['Egress'] },
    });
  }
  return policies;
}
