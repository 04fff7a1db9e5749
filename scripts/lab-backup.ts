// npm run lab:backup -- --out DIR [--config lab.yaml] [--host USER@ADDR[:PORT] --ssh-key FILE [--known-hosts FILE]] [--kubeconfig FILE] [--recipient AGE_KEY]…
import { resolve } from 'node:path';
import { LabError } from '../core/errors.ts';
import { runMain } from '../core/main.ts';
import { formatSize } from '../core/units.ts';
import { loadLabConfig } from '../config/load.ts';
import { takeBackup } from '../lab/backup/backup.ts';
import { parseHostFlag, remoteForLab } from '../lab/backup/remote.ts';
import { getDriver } from '../lab/drivers/index.ts';
import { readLabState } from '../lab/state.ts';
import { DEFAULT_LOCK_FILE } from '../images/lock/lock.ts';

runMain(
  {
    string: ['config', 'out', 'host', 'ssh-key', 'known-hosts', 'kubeconfig', 'recipient', 'storage-dir', 'lock'],
    boolean: ['retain'],
    usage: `
npm run lab:backup -- --out DIR [options]
  --out DIR             a new directory: files 0600 in a 0700 directory, backup.json the manifest
  --config FILE         lab config (default: lab.yaml): the lab to back up, storageDir, pre-backup commands
  --host USER@ADDR      back up the real server instead of the lab (with --ssh-key; port with :PORT)
  --ssh-key FILE        the key for --host
  --known-hosts FILE    known_hosts for --host (default: yours; server:seed writes one)
  --kubeconfig FILE     kubectl on this host with FILE instead of the server's admin.conf over SSH
  --recipient KEY       encrypt every data file to this age recipient (age1… or ssh-ed25519 …); repeatable
  --storage-dir DIR     the volumes directory (default: addons.storageDir)
  --lock FILE           the lock file recorded in the backup (default: ${DEFAULT_LOCK_FILE})
  --retain              keep a failed backup's directory`,
  },
  async ({ args, progress, signal }) => {
    if (!args.out) throw new LabError('--out DIR is required', 'npm run lab:backup -- --out ./backups/2026-12-01', 2);
    const config = await loadLabConfig(args.config);
    let remote;
    let imageDir: string | undefined;
    if (args.host) {
      if (!args['ssh-key']) throw new LabError('--host needs --ssh-key FILE', 'the key whose public half is in the server\'s authorized_keys', 2);
      remote = parseHostFlag(args.host, resolve(args['ssh-key']), args['known-hosts'] ? resolve(args['known-hosts']) : undefined);
    } else {
      const state = await readLabState(config.stateDir);
      const driver = getDriver(state?.driver ?? 'qemu');
      if (!state || !(await driver.status(state, config.stateDir)).running) throw new LabError(`lab ${config.name} is not running`, 'start it with npm run lab:up, or back up the server with --host', 3);
      remote = remoteForLab(config.stateDir, state.sshUser, driver.sshEndpoint(state));
      imageDir = state.imageDir;
    }
    const result = await takeBackup({
      source: { kind: args.host ? 'server' : 'lab', name: args.host ? (config.server?.hostname ?? args.host) : config.name },
      remote,
      storageDir: args['storage-dir'] ?? config.addons.storageDir,
      outDir: resolve(args.out),
      recipients: ([] as string[]).concat(args.recipient ?? []),
      preBackup: config.backup.preBackup,
      kubeconfig: args.kubeconfig ? resolve(args.kubeconfig) : undefined,
      imageDir,
      lockFile: resolve(args.lock ?? DEFAULT_LOCK_FILE),
      progress,
      signal,
      retain: args.retain,
    });
    const m = result.manifest;
    process.stdout.write([
      `backup of ${m.source.name} in ${result.dir}: ${formatSize(result.bytes)}${m.encryptedTo.length ? `, encrypted to ${m.encryptedTo.length} recipient(s)` : ''}`,
      `  volumes: ${m.volumes.files.length} files, ${formatSize(m.volumes.totalBytes)}, each with its sha256`,
      `  cluster: ${m.cluster.taken ? `etcd revision ${m.cluster.etcd.revision} (${m.cluster.etcd.totalKey} keys), PKI, ClusterConfiguration, ${m.cluster.claims.length} claims${m.cluster.caSecret ? ', CA secret' : ''}` : m.cluster.reason}`,
      `  restore: npm run lab:restore -- ${result.dir}`,
      '',
    ].join('\n'));
  },
);
