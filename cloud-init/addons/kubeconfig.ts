/**
 * The admin kubeconfig handed to the user (pure): the guest's copy names the API server by its
 * in-VM address; on the host it must name the forwarded port. The API server certificate
 * carries the host address as a SAN (kubeadm certSANs), so TLS still verifies.
 */
import { parseDocument } from 'yaml';
import { LabError } from '../../core/errors.ts';

export function rewriteKubeconfigServer(text: string, server: string): string {
  const doc = parseDocument(text);
  const clusters = doc.get('clusters') as { items?: unknown[] } | undefined;
  if (!clusters?.items?.length) throw new LabError('the kubeconfig from the VM has no clusters', 'is /etc/kubernetes/admin.conf complete? kubeadm init may have failed');
  clusters.items.forEach((_, i) => doc.setIn(['clusters', i, 'cluster', 'server'], server));
  return doc.toString();
}

/** SANs the API server certificate needs so the forwarded endpoint verifies from the host. */
export function apiServerSans(labName: string, hostAddress: string): string[] {
  return [...new Set(['127.0.0.1', 'localhost', labName, ...(hostAddress === '0.0.0.0' ? [] : [hostAddress])])];
}
