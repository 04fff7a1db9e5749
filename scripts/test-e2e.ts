// npm run test:e2e -- [--config lab.yaml] [--report-dir DIR] [--tap] | --kubeconfig FILE --host ADDR --ca FILE [...]
import { join, resolve } from 'node:path';
import { LabError } from '../core/errors.ts';
import { runMain } from '../core/main.ts';
import { LAB_FILES } from '../core/paths.ts';
import { acceptanceContextForLab, acceptanceContextFromServer } from '../lab/acceptance/context.ts';
import { runAcceptanceSuite } from '../lab/acceptance/suite.ts';
import { loadLabConfig } from '../config/load.ts';
import { existingLabFor } from '../lab/existing.ts';

runMain(
  {
    string: ['config', 'report-dir', 'kubeconfig', 'host', 'ca', 'ingress-domain', 'dns-domain', 'log-target'],
    boolean: ['tap'],
    usage: `
npm run test:e2e -- [options]
  --config FILE          lab config (default: lab.yaml): the suite runs against that lab
  --report-dir DIR       where results.tap, junit.xml, results.json and failure bundles go
                         (default: report/ in the lab directory)
  --tap                  print the TAP stream instead of the summary
A server built from the image but not started by lab:up (a restore), instead of a lab:
  --kubeconfig FILE      its admin kubeconfig
  --host ADDR            the address its ingress answers on (ports 80 and 443)
  --ca FILE              the lab CA certificate its ClusterIssuer signs with
  --ingress-domain NAME  its lab domain (default: addons.ingressDomain from --config)
  --dns-domain NAME      its cluster domain (default: kubernetes.dnsDomain from --config)
  --log-target URL       its syslog target, when the suite should listen for container logs`,
  },
  async ({ args, signal }) => {
    // Tests an existing lab or server: lab.yaml is read for what it says, not checked against this host.
    const config = await loadLabConfig(args.config, { purpose: 'existing' });
    const server = Boolean(args.kubeconfig || args.host);
    if (server && !(args.kubeconfig && args.host && args.ca)) throw new LabError('--kubeconfig, --host and --ca go together', 'give all three to test a server that lab:up did not start', 2);
    const ctx = server
      ? await acceptanceContextFromServer({
          kubeconfig: resolve(String(args.kubeconfig)),
          host: String(args.host),
          caCert: resolve(String(args.ca)),
          ingressDomain: args['ingress-domain'] ?? config.addons.ingressDomain,
          dnsDomain: args['dns-domain'] ?? config.kubernetes.dnsDomain,
          logTarget: args['log-target'],
        })
      : await acceptanceContextForLab(config, (await existingLabFor(config)).driver);
    const run = await runAcceptanceSuite({
      ctx,
      name: server ? String(args.host) : `lab ${config.name}`,
      reportDir: args['report-dir'] ?? (server ? resolve('e2e-report') : join(config.stateDir, LAB_FILES.report)),
      onTapLine: args.tap ? (l) => process.stdout.write(l + '\n') : undefined,
      signal,
      userChecks: config.checks,
    });
    if (!args.tap) process.stdout.write(run.summary);
    process.stderr.write(`reports: ${run.files.junit}, ${run.files.json}, ${run.files.tap}\n`);
    if (run.bundle) process.stderr.write(`failure bundle: ${run.bundle}\n`);
    if (run.leftovers.length) process.stderr.write(`could not remove: ${run.leftovers.join('; ')}\n`);
    return run.report.fail === 0 && !run.report.bailout ? 0 : 1;
  },
);
