/** lab:status: running or stopped, uptime and forwards, from the lab's recorded state. */
import type { LabConfig } from '../config/lab-config.ts';
import { existingLabFor, renderConfigChanged, renderOtherLabs } from './existing.ts';
import type { LabState } from './state.ts';

export interface LabStatusReport {
  name: string;
  running: boolean;
  state?: LabState;
  pid?: number;
  uptimeSeconds?: number;
  /** Set when lab.yaml no longer describes the running lab. */
  configChanged?: string;
  /** Set when no lab is recorded for lab.yaml but others are (a renamed lab). */
  otherLabs?: string;
}

export async function labStatus(config: LabConfig): Promise<LabStatusReport> {
  const lab = await existingLabFor(config);
  const { state } = lab;
  if (!state) return { name: config.name, running: false, otherLabs: renderOtherLabs(lab) };
  const status = await lab.driver.status(state, lab.stateDir);
  return { name: state.name, running: status.running, state, pid: status.pid, uptimeSeconds: status.uptimeSeconds, configChanged: renderConfigChanged(lab) };
}

export function renderLabStatus(r: LabStatusReport): string {
  if (!r.state) return `lab ${r.name}: not created\n${r.otherLabs ? `  note: ${r.otherLabs}\n` : ''}`;
  const lines = [`lab ${r.name}: ${r.running ? 'running' : r.state.complete === false ? 'not running (a lab:up did not finish: npm run lab:down removes what it left)' : 'stopped (its files remain: npm run lab:down removes them)'}`];
  if (r.running) lines.push(`  ${r.pid ? `pid ${r.pid}, ` : ''}up ${formatUptime(r.uptimeSeconds ?? 0)}, ${r.state.driver} driver, ${r.state.accel.toUpperCase()}`);
  for (const f of r.state.forwards) lines.push(`  ${f.name.padEnd(10)} ${r.state.hostAddress}:${f.host} → guest ${f.guest}`);
  lines.push(r.state.kubernetes ? `  cluster    Kubernetes, ingress *.${r.state.ingressDomain ?? '?'}, kubeconfig: <lab directory>/kubeconfig` : '  cluster    none (OS-only image)');
  if (r.configChanged) lines.push(`  note: ${r.configChanged}`);
  return lines.join('\n') + '\n';
}

function formatUptime(s: number): string {
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}h${m}m` : m ? `${m}m${s % 60}s` : `${s}s`;
}
