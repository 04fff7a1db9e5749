/**
 * Reads what `registries:` names on the host (effectful): each CA file and each credential from
 * its file or environment variable, at lab:up. Every problem at once, each naming its field and
 * what to do; a value never appears in a message.
 */
import { readFile } from 'node:fs/promises';
import type { RegistryMaterial } from '../cloud-init/registries.ts';
import type { RegistryConfig, SecretSource } from '../config/lab-config.ts';
import { LabError } from '../core/errors.ts';

export async function readRegistryMaterial(registries: RegistryConfig[], env: NodeJS.ProcessEnv = process.env): Promise<RegistryMaterial[]> {
  const problems: string[] = [];
  const read = async (path: string, source: SecretSource): Promise<string | undefined> => {
    if (source.env !== undefined) {
      const value = env[source.env];
      if (!value) problems.push(`${path}: the environment variable ${source.env} is not set (or empty)`);
      return value;
    }
    try {
      // One trailing newline is the file's, not the value's.
      const value = (await readFile(source.file!, 'utf8')).replace(/\r?\n$/, '');
      if (!value) problems.push(`${path}: ${source.file} is empty`);
      return value;
    } catch (error) {
      problems.push(`${path}: cannot read ${source.file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
      return undefined;
    }
  };
  const material: RegistryMaterial[] = [];
  for (const [i, r] of registries.entries()) {
    const at = `registries.${i}`;
    const entry: RegistryMaterial = { host: r.host, ...(r.mirrorOf ? { mirrorOf: r.mirrorOf } : {}) };
    if (r.ca) {
      const pem = await read(`${at}.ca`, { file: r.ca });
      if (pem !== undefined && pem && !/-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----/.test(pem)) problems.push(`${at}.ca: ${r.ca} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
      else if (pem) entry.caPem = `${pem}\n`;
    }
    if (r.credentials) {
      const { username: u, password: p } = r.credentials;
      const username = typeof u === 'string' ? u : await read(`${at}.credentials.username`, u);
      const password = await read(`${at}.credentials.password`, p);
      if (username?.includes(':')) problems.push(`${at}.credentials.username: a registry user name cannot contain ":"`);
      if (username && password) entry.credentials = { username, password };
    }
    material.push(entry);
  }
  if (problems.length) throw new LabError(problems.join('\n'), 'fix those fields of registries: in lab.yaml (files are relative to lab.yaml; environment variables must be set for lab:up)', 2);
  return material;
}
