/**
 * cloud-init's state read from the files its `status` command reads (/run/cloud-init/status.json
 * and result.json), with the same rules: done once result.json exists; errors and recoverable
 * errors from every stage in status.json; a failed cloud-init unit ends the wait with an error.
 * A shell read instead of `cloud-init status`: that is a Python start-up in the guest, seconds
 * under emulation, at each probe and check.
 */

/** cloud-init's systemd units (a failed one means it will not finish). */
const CLOUD_INIT_UNITS = ['cloud-init-main.service', 'cloud-init-local.service', 'cloud-init-network.service', 'cloud-config.service', 'cloud-final.service'];
const RUN_DIR = '/run/cloud-init';

/**
 * Waits in the guest up to `seconds` for cloud-init to finish (a file test every 200 ms) or a
 * unit of it to fail (systemctl every 5 s: a process start costs the booting guest CPU), then
 * prints one `@state=…` line and status.json.
 */
export function renderCloudInitWaitScript(seconds: number): string {
  const ticks = Math.max(0, Math.round(seconds * 5));
  const failed = `systemctl is-failed -q ${CLOUD_INIT_UNITS.join(' ')}`;
  return [
    `i=0; until [ -e ${RUN_DIR}/result.json ] || [ -e ${RUN_DIR}/disabled ] || [ "$i" -ge ${ticks} ]; do`,
    `  if [ $((i % 25)) -eq 24 ] && ${failed}; then break; fi`,
    '  sleep 0.2; i=$((i+1))',
    'done',
    `if [ -e ${RUN_DIR}/disabled ]; then echo @state=disabled; elif [ -e ${RUN_DIR}/result.json ]; then echo @state=done; elif ${failed}; then echo @state=unit-failed; else echo @state=running; fi`,
    `cat ${RUN_DIR}/status.json 2>/dev/null || true`,
  ].join('\n');
}

export interface CloudInitStatus {
  state: 'done' | 'running' | 'disabled' | 'unit-failed' | 'unknown';
  errors: string[];
  /** `level: message` for each recoverable error (warnings and deprecations cloud-init logged). */
  recoverableErrors: string[];
}

/** Parses what renderCloudInitWaitScript printed (pure). */
export function parseCloudInitStatus(output: string): CloudInitStatus {
  const [first = '', ...rest] = output.split('\n');
  const state = (/^@state=(done|running|disabled|unit-failed)$/.exec(first.trim())?.[1] ?? 'unknown') as CloudInitStatus['state'];
  const errors: string[] = [];
  const recoverableErrors: string[] = [];
  let v1: Record<string, unknown> = {};
  try {
    v1 = ((JSON.parse(rest.join('\n') || '{}') as { v1?: Record<string, unknown> }).v1 ?? {});
  } catch {
    if (state === 'done') errors.push('status.json is not JSON');
  }
  for (const [, stage] of Object.entries(v1).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!stage || typeof stage !== 'object') continue;
    const s = stage as { errors?: unknown[]; recoverable_errors?: Record<string, unknown[]> };
    errors.push(...(s.errors ?? []).map(String));
    for (const [level, messages] of Object.entries(s.recoverable_errors ?? {})) recoverableErrors.push(...messages.map((m) => `${level}: ${String(m)}`));
  }
  if (state === 'unit-failed') errors.push(`a cloud-init unit failed (systemctl --failed; journalctl -u cloud-init-main)`);
  if (state === 'disabled') errors.push('cloud-init is disabled in the guest (/run/cloud-init/disabled: its generator found no datasource)');
  return { state, errors, recoverableErrors };
}
