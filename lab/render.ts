/**
 * lab:render: what a lab would receive, for review before booting. Secrets are generated
 * per lab at lab:up; here they are named placeholders, so the output is stable and diffable.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { renderSeedFiles, type SeedSecrets } from '../cloud-init/user-data.ts';
import type { LabConfig } from './config/schema.ts';

export const PLACEHOLDER_SECRETS: SeedSecrets = {
  sshPublicKey: 'ssh-ed25519 <per-lab user key, generated at lab:up> labsmith',
  hostKey: { privateKey: '<per-lab SSH host key, generated at lab:up>', publicKey: 'ssh-ed25519 <per-lab host key> labsmith-host' },
  caCert: '<lab CA certificate, generated at lab:up>',
  tlsCert: '<placeholder ingress certificate, signed by the lab CA at lab:up>',
  tlsKey: '<placeholder ingress key, generated at lab:up>',
};

export async function renderLab(config: LabConfig, outDir: string): Promise<string[]> {
  const seed = renderSeedFiles(config, PLACEHOLDER_SECRETS);
  const written: string[] = [];
  await mkdir(join(outDir, 'seed'), { recursive: true });
  for (const [name, content] of Object.entries(seed)) {
    const path = join(outDir, 'seed', name);
    await writeFile(path, content);
    written.push(path);
  }
  const configPath = join(outDir, 'lab.resolved.json');
  await writeFile(configPath, JSON.stringify(config, null, 2) + '\n');
  written.push(configPath);
  return written;
}
