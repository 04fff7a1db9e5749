// npm run lab:up -- [--config lab.yaml] [--driver qemu] [--retain] [--json]
import { join } from 'node:path';
import { runMain } from '../core/main.ts';
import { LAB_FILES } from '../core/paths.ts';
import { loadLabConfig } from '../config/load.ts';
import { getDriver } from '../lab/drivers/index.ts';
import { labUp } from '../lab/up.ts';
import { IMAGE_SOURCE_USAGE, loadImageSource, type ImageSourceFlags } from '../images/source.ts';

runMain(
  {
    string: ['config', 'driver', 'lock', 'artifacts'],
    boolean: ['retain', 'os-only'],
    default: { driver: 'qemu' },
    usage: `
npm run lab:up -- [options]
  --config FILE   lab config (default: lab.yaml)
  --driver NAME   qemu (default: no daemon) or libvirt (CDK for Terraform + tofu/terraform)
${IMAGE_SOURCE_USAGE}
  --retain        keep what was made when a step fails (for debugging)
  --json          one JSON event per line
  --verbose       stack traces on errors`,
  },
  async ({ args, progress, signal }) => {
    const config = await loadLabConfig(args.config);
    const result = await labUp({ config, driver: getDriver(args.driver), source: await loadImageSource(config, args as ImageSourceFlags), progress, signal, retain: args.retain });
    const out = args.json
      ? JSON.stringify({ event: 'ready', lab: config.name, ssh: result.sshCommand, urls: result.urls, stateDir: config.stateDir, kubeconfig: result.state.kubernetes ? join(config.stateDir, LAB_FILES.kubeconfig) : null }) + '\n'
      : [
          `lab ${config.name} is up (${result.state.accel.toUpperCase()}); ${result.checks.filter((c) => c.ok).length}/${result.checks.length} checks passed`,
          `  ssh:    npm run lab:ssh   (or: ${result.sshCommand})`,
          ...result.urls.map((u) => `  ${u.split(':')[0]!.padEnd(6)}  ${u}`),
          ...(result.state.kubernetes ? [`  kubectl --kubeconfig ${join(config.stateDir, LAB_FILES.kubeconfig)} get nodes`] : [`  (OS-only: no Kubernetes in this image)`]),
          `  files:  ${config.stateDir}`,
          `  remove: npm run lab:down`,
          '',
        ].join('\n');
    process.stdout.write(out);
  },
);
