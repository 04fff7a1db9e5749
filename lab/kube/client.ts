/**
 * A small Kubernetes API client over HTTPS (no kubectl on the host): TLS verified against the
 * kubeconfig's CA, client certificates or a bearer token. Enough for the lab's readiness waits
 * and the acceptance suite: get, list, create, server-side apply, delete and pod logs.
 */
import { request as httpsRequest } from 'node:https';
import { LabError } from '../../core/errors.ts';
import type { KubeCredentials } from './kubeconfig.ts';

export class KubeApiError extends LabError {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [k: string]: unknown };
  [k: string]: unknown;
}

const PLURALS: Record<string, string> = { Ingress: 'ingresses', NetworkPolicy: 'networkpolicies', Endpoints: 'endpoints', StorageClass: 'storageclasses', IngressClass: 'ingressclasses' };
const CLUSTER_SCOPED = new Set(['Namespace', 'Node', 'ClusterRole', 'ClusterRoleBinding', 'ClusterIssuer', 'StorageClass', 'IngressClass', 'PersistentVolume', 'CustomResourceDefinition']);

function pluralOf(kind: string): string {
  return PLURALS[kind] ?? `${kind.toLowerCase()}s`;
}

/** `/api/v1/namespaces/ns/pods` (collection) or `/…/pods/name` for an object (pure). */
export function resourcePath(apiVersion: string, kind: string, namespace?: string, name?: string): string {
  const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const ns = !CLUSTER_SCOPED.has(kind) && namespace ? `/namespaces/${namespace}` : '';
  return `${base}${ns}/${pluralOf(kind)}${name ? `/${name}` : ''}`;
}

function objectPath(obj: KubeObject): string {
  return resourcePath(obj.apiVersion, obj.kind, obj.metadata.namespace, obj.metadata.name);
}

export interface RequestOptions {
  body?: string;
  contentType?: string;
  signal?: AbortSignal;
  timeoutMs?: number;
}

export class KubeClient {
  constructor(
    readonly creds: KubeCredentials,
    readonly defaultTimeoutMs = 15_000,
  ) {}

  request(method: string, path: string, opts: RequestOptions = {}): Promise<{ status: number; text: string }> {
    const url = new URL(path, this.creds.server);
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        url,
        {
          method,
          ca: this.creds.ca,
          cert: this.creds.cert,
          key: this.creds.key,
          headers: {
            accept: 'application/json',
            ...(this.creds.token ? { authorization: `Bearer ${this.creds.token}` } : {}),
            ...(opts.body !== undefined ? { 'content-type': opts.contentType ?? 'application/json', 'content-length': Buffer.byteLength(opts.body) } : {}),
          },
          timeout: opts.timeoutMs ?? this.defaultTimeoutMs,
          signal: opts.signal,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer from ${this.creds.server} within ${opts.timeoutMs ?? this.defaultTimeoutMs}ms`)));
      // Aborted by the caller (Ctrl-C, a check's deadline): the caller's reason, not a connection problem.
      req.on('error', (e) => reject(opts.signal?.aborted ? (opts.signal.reason ?? e) : new LabError(`Kubernetes API ${method} ${path}: ${e.message}`, `is the API server at ${this.creds.server} up and reachable?`)));
      if (opts.body !== undefined) req.write(opts.body);
      req.end();
    });
  }

  private async json<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const { status, text } = await this.request(method, path, opts);
    if (status >= 400) {
      let reason = '';
      let message = text.slice(0, 300);
      try {
        const s = JSON.parse(text) as { reason?: string; message?: string };
        reason = s.reason ?? '';
        message = s.message ?? message;
      } catch {
        /* not a Status object */
      }
      throw new KubeApiError(status, reason, `Kubernetes API ${method} ${path}: ${status} ${reason}: ${message}`);
    }
    return (text ? JSON.parse(text) : {}) as T;
  }

  get<T = KubeObject>(path: string, signal?: AbortSignal): Promise<T> {
    return this.json<T>('GET', path, { signal });
  }

  async list<T = KubeObject>(path: string, signal?: AbortSignal): Promise<T[]> {
    return (await this.json<{ items: T[] }>('GET', path, { signal })).items;
  }

  /** Server-side apply: idempotent create-or-update owned by field manager "labsmith-e2e". */
  apply<T = KubeObject>(obj: KubeObject, signal?: AbortSignal): Promise<T> {
    return this.json<T>('PATCH', `${objectPath(obj)}?fieldManager=labsmith-e2e&force=true`, { body: JSON.stringify(obj), contentType: 'application/apply-patch+yaml', signal });
  }

  /** Deletes; a missing object is not an error. Foreground so dependents go too. */
  async delete(path: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.json('DELETE', path, { body: JSON.stringify({ kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Foreground' }), signal });
    } catch (error) {
      if (!(error instanceof KubeApiError && error.status === 404)) throw error;
    }
  }

  async logs(namespace: string, pod: string, signal?: AbortSignal): Promise<string> {
    const { status, text } = await this.request('GET', `/api/v1/namespaces/${namespace}/pods/${pod}/log`, { signal });
    return status < 400 ? text : '';
  }
}
