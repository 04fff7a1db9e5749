/** What the checks need to reach a lab (from its state directory, or from flags for a restored server). */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LabError } from '../../core/errors.ts';
import { LAB_FILES } from '../../core/paths.ts';
import type { SshTarget } from '../ssh.ts';
import type { LabState } from '../state.ts';

export interface AcceptanceContext {
  ssh: SshTarget;
  /** Host address the forwards listen on. */
  address: string;
  /** Forward name → host port. */
  ports: Record<string, number>;
  caCert: string;
  /** The name the placeholder's certificate is issued for. */
  tlsName: string;
}

export const PLACEHOLDER_TLS_NAME = 'localhost';

export async function acceptanceContextFromLab(state: LabState, stateDir: string, ssh: { host: string; port: number }): Promise<AcceptanceContext> {
  const caCert = await readFile(join(stateDir, LAB_FILES.caCert), 'utf8').catch(() => {
    throw new LabError(`the lab CA certificate ${join(stateDir, LAB_FILES.caCert)} is missing`, 'recreate the lab: npm run lab:down && npm run lab:up');
  });
  const address = state.hostAddress === '0.0.0.0' ? '127.0.0.1' : state.hostAddress;
  return {
    ssh: { stateDir, user: state.sshUser, host: ssh.host, port: ssh.port },
    address,
    ports: Object.fromEntries(state.forwards.map((f) => [f.name, f.host])),
    caCert,
    tlsName: PLACEHOLDER_TLS_NAME,
  };
}
