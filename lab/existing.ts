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
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { stateRoot } from '../core/paths.ts';
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
  /** When no lab is recorded in stateDir: the labs recorded elsewhere in the state root (a renamed lab is found there). */
  others: { name: string; stateDir: string }[];
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
    others: state ? [] : await recordedLabsIn(stateRoot(), config.stateDir),
  };
}

/** Labs with a readable recorded state directly under root, except the one in `except`. */
async function recordedLabsIn(root: string, except: string): Promise<{ name: string; stateDir: string }[]> {
  const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
  const found: { name: string; stateDir: string }[] = [];
  for (const e of entries.filter((d) => d.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
    const dir = join(root, e.name);
    if (dir === except) continue;
    const state = await readLabState(dir).catch(() => undefined);
    if (state) found.push({ name: state.name, stateDir: dir });
  }
  return found;
}

/** Where lab.yaml names no recorded lab but others exist: its `name` (or stateDir) probably changed since lab:up. */
export function renderOtherLabs(lab: Pick<ExistingLab, 'config' | 'others'>): string | undefined {
  if (!lab.others.length) return undefined;
  const list = lab.others.map((o) => `${o.name} (${o.stateDir})`).join(', ');
  return `no lab is recorded for "${lab.config.name}" in ${lab.config.stateDir}, but this machine has: ${list}. If lab.yaml's name or stateDir changed since lab:up, set it back (or pass --config with the file that lab was made from) to act on that lab`;
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
export function renderConfigChanged(lab: Pick<ExistingLab, 'configChanges' | 'stateDir'>): string | undefined {
  if (!lab.configChanges.length) return undefined;
  return `lab.yaml changed since lab:up (${lab.configChanges.join(', ')}): acting on the lab as it was created (its recorded state in ${lab.stateDir})`;
}
