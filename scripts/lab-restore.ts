// npm run lab:restore -- DIR [--config lab.yaml] [--host USER@ADDR --ssh-key FILE [--ca FILE] [--kubeconfig FILE]] [--identity FILE] [--etcd] [--volumes-only] [--no-suite] [--report-dir DIR]
import { join, resolve } from 'node:path';
import { LabError } from '../core/errors.ts';
import { runMain } from '../core/main.ts';
import { LAB_FILES } from '../core/paths.ts';
import { loadLabConfig } from '../config/load.ts';
import { acceptanceContextForLab, type AcceptanceContext } from '../lab/acceptance/context.ts';
import { parseHostFlag, remoteForLab, type RemoteHost } from '../lab/backup/remote.ts';
import { getDriver } from '../lab/drivers/index.ts';
import { restoreBackup } from '../lab/restore/restore.ts';
import { acceptanceContextForRestoredServer, renderRestoreSuiteLines, runRestoreSuite } from '../lab/restore/restore-suite.ts';
import { readLabState } from '../lab/state.ts';

runMain(
  {
    string: ['config', 'host', 'ssh-key', 'known-hosts', 'identity', 'advertise-address', 'etcd-image', 'ca', 'kubeconfig', 'report-dir'],
    boolean: ['etcd', 'volumes-only', 'suite'],
    default: { suite: true },
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
  --volumes-only        only the volumes, also when the backup holds cluster state
Then the acceptance suite runs against the restored machine (as test:e2e), and the time from
the start to a green suite (the RTO) is printed. Without Kubernetes on the machine (an OS-only
image) the cluster checks are reported as not run; green is then every host and user check.
  --no-suite            stop at verified data (no suite, no RTO to a green suite)
  --report-dir DIR      the suite's results.tap, junit.xml, results.json and failure bundles
                        (default: report/ in the lab directory; with --host ./restore-report)
  --ca FILE             with --host: the certificate its ingress chains to (seed/placeholder.crt
                        from server:seed on an OS-only server; the lab CA with a cluster)
  --kubeconfig FILE     with --host and a cluster: its admin kubeconfig (issued before the backup: still valid)`,
  },
  async ({ args, progress, signal }) => {
    const dir = args._[0];
    if (!dir) throw new LabError('the backup directory is required', 'npm run lab:restore -- ./backups/2026-12-01', 2);
    const started = Date.now();
    const suite = args.suite !== false;
    let remote: RemoteHost;
    let context: () => Promise<AcceptanceContext>;
    let reportDir: string;
    let userChecks;
    if (args.host) {
      if (!args['ssh-key']) throw new LabError('--host needs --ssh-key FILE', "the key whose public half is in the server's authorized_keys", 2);
      if (suite && !args.ca) throw new LabError('the suite after a restore onto --host needs --ca FILE', "the certificate the server's ingress chains to: seed/placeholder.crt (server:seed) on an OS-only server, the lab CA with a cluster; or pass --no-suite", 2);
      const config = await loadLabConfig(args.config, { purpose: 'existing' });
      const target = parseHostFlag(args.host, resolve(args['ssh-key']), args['known-hosts'] ? resolve(args['known-hosts']) : undefined);
      remote = target;
      reportDir = resolve(args['report-dir'] ?? 'restore-report');
      userChecks = config.checks;
      context = () => acceptanceContextForRestoredServer(config, target, { caFile: resolve(String(args.ca)), kubeconfig: args.kubeconfig ? resolve(args.kubeconfig) : undefined, signal });
    } else {
      if (args.ca || args.kubeconfig) throw new LabError('--ca and --kubeconfig go with --host', "a lab's own CA and kubeconfig are in its directory", 2);
      const config = await loadLabConfig(args.config);
      const state = await readLabState(config.stateDir);
      const driver = getDriver(state?.driver ?? 'qemu');
      if (!state || !(await driver.status(state, config.stateDir)).running) throw new LabError(`lab ${config.name} is not running`, 'bring up a fresh lab with npm run lab:up, or restore onto the server with --host', 3);
      remote = remoteForLab(config.stateDir, state.sshUser, driver.sshEndpoint(state));
      reportDir = resolve(args['report-dir'] ?? join(config.stateDir, LAB_FILES.report));
      userChecks = config.checks;
      context = () => acceptanceContextForLab(config, driver);
    }
    const result = await restoreBackup({
      backupDir: resolve(String(dir)), remote, mode: args.etcd ? 'etcd' : 'rebuild', identity: args.identity ? resolve(args.identity) : undefined,
      volumesOnly: args['volumes-only'], advertiseAddress: args['advertise-address'], etcdImage: args['etcd-image'], progress, signal,
    });
    const verifiedSeconds = Math.round((Date.now() - started) / 1000);
    const c = result.comparison;
    const lines = [
      `restored ${result.manifest.source.name} (${result.manifest.startedAt}) onto ${remote.host}:${remote.port}`,
      `  verified: ${c.checked} files, every sha256 equal to the manifest's${c.extra.length ? ` (${c.extra.length} other files were already there)` : ''}`,
      `  cluster: ${result.plan ? `${result.plan.mode}: ${result.plan.steps.length} steps run` : result.manifest.cluster.taken ? 'not restored (--volumes-only)' : 'none in the backup'}`,
      `  RTO to verified data: ${verifiedSeconds}s`,
    ];
    if (!suite) {
      process.stdout.write([...lines, '  acceptance suite: not run (--no-suite); run it with npm run test:e2e', ''].join('\n'));
      return 0;
    }
    progress.start('Running the acceptance suite against the restored machine');
    const outcome = await runRestoreSuite({ ctx: await context(), name: `restored ${result.manifest.source.name} on ${remote.host}`, reportDir, userChecks, signal });
    progress.end(outcome.green);
    const greenSeconds = Math.round((Date.now() - started) / 1000);
    lines.push(...renderRestoreSuiteLines(outcome), `  RTO to a green acceptance suite: ${outcome.green ? `${greenSeconds}s` : 'not reached (the suite is red)'}`, '');
    process.stdout.write(lines.join('\n'));
    return outcome.green ? 0 : 1;
  },
);
