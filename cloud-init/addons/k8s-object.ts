/** The loose shape every rendered Kubernetes object has; validation is by the real schemas in tests. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'labsmith' } as const;
