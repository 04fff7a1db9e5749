/** Kubeconfig reading (pure apart from reading referenced files): the current context's server and credentials. */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { LabError } from '../../core/errors.ts';

export interface KubeCredentials {
  server: string;
  /** PEM */
  ca?: string;
  cert?: string;
  key?: string;
  token?: string;
}

interface Named<T> {
  name: string;
  [k: string]: unknown;
  value?: T;
}

type Kubeconfig = {
  'current-context'?: string;
  contexts?: Named<unknown>[];
  clusters?: Named<unknown>[];
  users?: Named<unknown>[];
};

const b64 = (s: unknown) => (typeof s === 'string' ? Buffer.from(s, 'base64').toString('utf8') : undefined);

/** Parses a kubeconfig; file references are returned as paths for `loadKubeconfig` to read. */
export function parseKubeconfig(text: string, source: string, contextName?: string): KubeCredentials & { files: Partial<Record<'ca' | 'cert' | 'key', string>> } {
  const doc = (parse(text) ?? {}) as Kubeconfig;
  const bad = (what: string) => new LabError(`${source}: ${what}`, 'pass the admin kubeconfig of the server (on a kubeadm node: /etc/kubernetes/admin.conf)');
  const name = contextName ?? doc['current-context'];
  const context = (doc.contexts ?? []).find((c) => c.name === name)?.context as { cluster?: string; user?: string } | undefined;
  if (!context) throw bad(`no context ${name ?? '(current-context is unset)'}`);
  const cluster = (doc.clusters ?? []).find((c) => c.name === context.cluster)?.cluster as Record<string, string> | undefined;
  if (!cluster?.server) throw bad(`context ${name} names cluster ${context.cluster}, which has no server`);
  const user = ((doc.users ?? []).find((u) => u.name === context.user)?.user ?? {}) as Record<string, string>;
  if (cluster['insecure-skip-tls-verify']) throw bad('insecure-skip-tls-verify is set; the suite verifies the API server against its CA');
  return {
    server: cluster.server.replace(/\/$/, ''),
    ca: b64(cluster['certificate-authority-data']),
    cert: b64(user['client-certificate-data']),
    key: b64(user['client-key-data']),
    token: user.token,
    files: { ca: cluster['certificate-authority'], cert: user['client-certificate'], key: user['client-key'] },
  };
}

export async function loadKubeconfig(path: string, contextName?: string): Promise<KubeCredentials> {
  const text = await readFile(path, 'utf8').catch(() => {
    throw new LabError(`kubeconfig ${path} cannot be read`, 'check --kubeconfig, or start the lab with npm run lab:up (it writes one into the lab directory)');
  });
  const parsed = parseKubeconfig(text, path, contextName);
  const read = async (p: string | undefined) => (p ? readFile(resolve(dirname(path), p), 'utf8') : undefined);
  return {
    server: parsed.server,
    ca: parsed.ca ?? (await read(parsed.files.ca)),
    cert: parsed.cert ?? (await read(parsed.files.cert)),
    key: parsed.key ?? (await read(parsed.files.key)),
    token: parsed.token,
  };
}
