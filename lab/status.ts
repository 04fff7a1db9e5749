/** lab:status: running or stopped, uptime and forwards. */
import type { LabConfig } from '../config/lab-config.ts';
import type { LabDriver } from './drivers/driver.ts';
import { readLabState, type LabState } from './state.ts';

export interface LabStatusReport {
  name: string;
  running: boolean;
  state?: LabState;
  pid?: number;
  uptimeSeconds?: number;
}

export async function labStatus(config: LabConfig, driver: LabDriver): Promise<LabStatusReport> {
  const state = await readLabState(config.stateDir);
  if (!state) return { name: config.name, running: false };
  const status = await driver.status(state, config.stateDir);
  return { name: config.name, running: status.running, state, pid: status.pid, uptimeSeconds: status.uptimeSeconds };
}

export function renderLabStatus(r: LabStatusReport): string {
  if (!r.state) return `lab ${r.name}: not created\n`;
  const lines = [`lab ${r.name}: ${r.running ? 'running' : 'stopped (its files remain: npm run lab:down removes them)'}`];
  if (r.running) lines.push(`  pid ${r.pid}, up ${formatUptime(r.uptimeSeconds ?? 0)}, ${r.state.driver} driver, ${r.state.accel.toUpperCase()}`);
  for (const f of r.state.forwards) lines.push(`  ${f.name.padEnd(10)} ${r.state.hostAddress}:${f.host} → guest ${f.guest}`);
  lines.push(r.state.kubernetes ? `  cluster    Kubernetes, ingress *.${r.state.ingressDomain ?? '?'}, kubeconfig: <lab directory>/kubeconfig` : '  cluster    none (OS-only image)');
  return lines.join('\n') + '\n';
}

function formatUptime(s: number): string {
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}h${m}m` : m ? `${m}m${s % 60}s` : `${s}s`;
}
