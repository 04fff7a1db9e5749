/** Host port checks before a lab starts. */
import { createServer, type AddressInfo } from 'node:net';
import { LabError } from '../core/errors.ts';
import type { Forward } from '../config/lab-config.ts';

/** Resolves with the error code when the port cannot be bound, undefined when it is free. */
export function probePort(address: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
    server.listen({ host: address, port, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}

/** A port the kernel just handed out on loopback, for labs made by tests and benchmarks. */
export async function freePort(address = '127.0.0.1'): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** lab.yaml text for a throwaway lab whose forwards use free high ports. */
export async function throwawayLabYaml(name: string, stateDir: string, extra = ''): Promise<string> {
  const lines = [`name: ${name}`, `stateDir: ${stateDir}`, 'network:', '  forwards:'];
  for (const forward of ['http', 'https', 'ssh', 'apiserver']) lines.push(`    ${forward}: { host: ${await freePort()} }`);
  return `${lines.join('\n')}\n${extra}`;
}

export async function ensurePortsFree(address: string, forwards: Forward[]): Promise<void> {
  const problems: string[] = [];
  for (const f of forwards) {
    const code = await probePort(address, f.host);
    if (code === 'EADDRINUSE') problems.push(`network.forwards.${f.name}.host: port ${f.host} on ${address} is already in use (see \`ss -ltnp 'sport = :${f.host}'\`)`);
    else if (code === 'EACCES') problems.push(`network.forwards.${f.name}.host: port ${f.host} needs root`);
    else if (code) problems.push(`network.forwards.${f.name}.host: cannot listen on ${address}:${f.host} (${code})`);
  }
  if (problems.length) {
    throw new LabError(problems.join('\n'), 'stop what uses those ports (another lab: `npm run lab:down`), or pick other host ports in lab.yaml');
  }
}
