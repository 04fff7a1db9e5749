/**
 * Finding an existing lab for the commands that act on one (lab:down, lab:status, lab:ssh,
 * test:e2e): lab.yaml only says where the lab directory is; the driver and everything it
 * needs come from the lab's recorded state, and a config edited since lab:up is reported,
 * never obeyed.
 */
import { loadLabConfig } from '../config/load.ts';
import type { LabConfig } from '../config/lab-config.ts';
import { getDriver } from './drivers/index.ts';
import type { LabDriver } from './drivers/driver.ts';
import { readLabState, type LabState } from './state.ts';

export interface ExistingLab {
  /** The config as lab.yaml says now (checked for shape, not against the host). */
  config: LabConfig;
  stateDir: string;
  /** undefined: no lab was created in that directory. */
  state?: LabState;
  /** The recorded driver (qemu when nothing is recorded: there is nothing for it to find). */
  driver: LabDriver;
  /** Top-level fields of lab.yaml that differ from the config lab:up ran with. */
  configChanges: string[];
}

export async function openExistingLab(configFile?: string): Promise<ExistingLab> {
  const config = await loadLabConfig(configFile, { purpose: 'existing' });
  return existingLabFor(config);
}

export async function existingLabFor(config: LabConfig): Promise<ExistingLab> {
  const state = await readLabState(config.stateDir);
  return {
    config,
    stateDir: config.stateDir,
    state,
    driver: getDriver(state?.driver ?? 'qemu'),
    configChanges: state?.config ? diffConfig(state.config, config) : [],
  };
}

/** Dotted paths (two levels deep) where two configs differ (pure). */
export function diffConfig(recorded: LabConfig, current: LabConfig): string[] {
  const changes: string[] = [];
  const a = recorded as unknown as Record<string, unknown>;
  const b = current as unknown as Record<string, unknown>;
  for (const key of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    const x = a[key];
    const y = b[key];
    if (JSON.stringify(x) === JSON.stringify(y)) continue;
    if (isRecord(x) && isRecord(y)) {
      for (const sub of [...new Set([...Object.keys(x), ...Object.keys(y)])].sort()) {
        if (JSON.stringify(x[sub]) !== JSON.stringify(y[sub])) changes.push(`${key}.${sub}`);
      }
    } else {
      changes.push(key);
    }
  }
  return changes;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** One line for the user when lab.yaml no longer describes the lab. */
export function renderConfigChanged(lab: ExistingLab): string | undefined {
  if (!lab.configChanges.length) return undefined;
  return `lab.yaml changed since lab:up (${lab.configChanges.join(', ')}): acting on the lab as it was created (its recorded state in ${lab.stateDir})`;
}
