/** Host port checks before a lab starts. */
import { createSocket } from 'node:dgram';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { LabError } from '../core/errors.ts';
import { forwardProtocols, type Forward } from '../config/lab-config.ts';

/** Resolves with the error code when the TCP port cannot be bound, undefined when it is free. */
export function probePort(address: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
    server.listen({ host: address, port, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}

/** The same for a UDP port (a DNS forward's other half): a bound UDP socket is no TCP listener. */
export function probeUdpPort(address: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = createSocket({ type: address.includes(':') ? 'udp6' : 'udp4', reuseAddr: false });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      socket.close();
      resolve(error.code ?? 'error');
    });
    socket.bind({ address, port, exclusive: true }, () => socket.close(() => resolve(undefined)));
  });
}

/**
 * A distinct port for each name, each one the kernel just handed out on loopback, for labs made by
 * tests and benchmarks. Every listener stays open until all are chosen: closed one at a time, the
 * kernel may hand the same port out twice.
 */
export async function freePorts<Name extends string>(names: readonly Name[], address = '127.0.0.1'): Promise<Record<Name, number>> {
  const servers = new Map<Name, Server>();
  try {
    for (const name of names) {
      const server = createServer();
      servers.set(name, server);
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, address, resolve));
    }
    const ports = {} as Record<Name, number>;
    for (const [name, server] of servers) ports[name] = (server.address() as AddressInfo).port;
    return ports;
  } finally {
    await Promise.all([...servers.values()].map((server) => new Promise((resolve) => server.close(resolve))));
  }
}

/** One port the kernel just handed out on loopback. */
export async function freePort(address = '127.0.0.1'): Promise<number> {
  return (await freePorts(['port'], address)).port;
}

/** lab.yaml text for a throwaway lab whose forwards use free high ports; `forwards` adds more (name → YAML mapping). */
export async function throwawayLabYaml(name: string, stateDir: string, extra = '', forwards: Record<string, string> = {}): Promise<string> {
  const lines = [`name: ${name}`, `stateDir: ${stateDir}`, 'network:', '  forwards:'];
  for (const [forward, port] of Object.entries(await freePorts(['http', 'https', 'ssh', 'apiserver']))) lines.push(`    ${forward}: { host: ${port} }`);
  for (const [forward, mapping] of Object.entries(forwards)) lines.push(`    ${forward}: ${mapping}`);
  return `${lines.join('\n')}\n${extra}`;
}

export async function ensurePortsFree(address: string, forwards: Forward[]): Promise<void> {
  const problems: string[] = [];
  for (const f of forwards) {
    for (const protocol of forwardProtocols(f)) {
      const code = await (protocol === 'udp' ? probeUdpPort : probePort)(address, f.host);
      const what = `${protocol.toUpperCase()} port ${f.host}`;
      const ss = protocol === 'udp' ? `ss -lunp 'sport = :${f.host}'` : `ss -ltnp 'sport = :${f.host}'`;
      if (code === 'EADDRINUSE') problems.push(`network.forwards.${f.name}.host: ${what} on ${address} is already in use (see \`${ss}\`)`);
      else if (code === 'EACCES') problems.push(`network.forwards.${f.name}.host: ${what} needs root`);
      else if (code) problems.push(`network.forwards.${f.name}.host: cannot bind ${what} on ${address} (${code})`);
    }
  }
  if (problems.length) {
    throw new LabError(problems.join('\n'), 'stop what uses those ports (another lab: `npm run lab:down`), or pick other host ports in lab.yaml');
  }
}
