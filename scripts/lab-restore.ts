// npm run lab:restore -- DIR [--config lab.yaml] [--host USER@ADDR --ssh-key FILE] [--identity FILE] [--etcd] [--volumes-only]
import { resolve } from 'node:path';
import { LabError } from '../core/errors.ts';
import { runMain } from '../core/main.ts';
import { loadLabConfig } from '../config/load.ts';
import { parseHostFlag, remoteForLab } from '../lab/backup/remote.ts';
import { getDriver } from '../lab/drivers/index.ts';
import { restoreBackup } from '../lab/restore/restore.ts';
import { readLabState } from '../lab/state.ts';

runMain(
  {
    string: ['config', 'host', 'ssh-key', 'known-hosts', 'identity', 'advertise-address', 'etcd-image'],
    boolean: ['etcd', 'volumes-only'],
    usage: `
npm run lab:restore -- DIR [options]
  DIR                   a directory lab:backup wrote
  --config FILE         lab config (default: lab.yaml): restore onto this (fresh) lab
  --host USER@ADDR      restore onto a freshly installed server instead (with --ssh-key; port with :PORT)
  --ssh-key FILE        the key for --host
  --known-hosts FILE    known_hosts for --host (server:seed writes one)
  --identity FILE       age identity for an encrypted backup
  --etcd                restore the etcd snapshot (etcdutl --bump-revision --mark-compacted) instead of rebuilding
  --advertise-address A the target's address for kubeadm (default: the route's)
  --etcd-image REF      the etcd image on the target whose etcdutl restores (with --etcd)
  --volumes-only        only the volumes, also when the backup holds cluster state`,
  },
  async ({ args, progress, signal }) => {
    const dir = args._[0];
    if (!dir) throw new LabError('the backup directory is required', 'npm run lab:restore -- ./backups/2026-12-01', 2);
    const started = Date.now();
    let remote;
    if (args.host) {
      if (!args['ssh-key']) throw new LabError('--host needs --ssh-key FILE', "the key whose public half is in the server's authorized_keys", 2);
      remote = parseHostFlag(args.host, resolve(args['ssh-key']), args['known-hosts'] ? resolve(args['known-hosts']) : undefined);
    } else {
      const config = await loadLabConfig(args.config);
      const state = await readLabState(config.stateDir);
      const driver = getDriver(state?.driver ?? 'qemu');
      if (!state || !(await driver.status(state, config.stateDir)).running) throw new LabError(`lab ${config.name} is not running`, 'bring up a fresh lab with npm run lab:up, or restore onto the server with --host', 3);
      remote = remoteForLab(config.stateDir, state.sshUser, driver.sshEndpoint(state));
    }
    const result = await restoreBackup({
      backupDir: resolve(String(dir)), remote, mode: args.etcd ? 'etcd' : 'rebuild', identity: args.identity ? resolve(args.identity) : undefined,
      volumesOnly: args['volumes-only'], advertiseAddress: args['advertise-address'], etcdImage: args['etcd-image'], progress, signal,
    });
    const c = result.comparison;
    process.stdout.write([
      `restored ${result.manifest.source.name} (${result.manifest.startedAt}) onto ${remote.host}:${remote.port}`,
      `  verified: ${c.checked} files, every sha256 equal to the manifest's${c.extra.length ? ` (${c.extra.length} other files were already there)` : ''}`,
      `  cluster: ${result.plan ? `${result.plan.mode}: ${result.plan.steps.length} steps run` : result.manifest.cluster.taken ? 'not restored (--volumes-only)' : 'none in the backup'}`,
      `  RTO to verified data: ${Math.round((Date.now() - started) / 1000)}s; next: npm run test:e2e (the acceptance suite)`,
      '',
    ].join('\n'));
  },
);
