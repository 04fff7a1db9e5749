/**
 * .github/workflows/nightly.yml, read by GitHub's own parser (@actions/workflow-parser): valid,
 * and shaped as the nightly needs (triggers, concurrency, KVM, host packages, the cached
 * archive, the same npm scripts a person runs, summary, artifacts, release, pull request, issue).
 * Every `run:` block is checked by shellcheck.
 */
import test from 'ava';
import { convertWorkflowTemplate, NoOperationTraceWriter, parseWorkflow } from '@actions/workflow-parser';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { run } from '../../core/exec.ts';
import { RELEASE_ASSET_WARN_BYTES } from '../../nightly/report.ts';
import { missingCommand, testUnless } from '../helpers.ts';

const FILE = join(import.meta.dirname, '../../.github/workflows/nightly.yml');

interface Step { name?: string; uses?: string; run?: string; if?: string; with?: Record<string, unknown>; env?: Record<string, string> }
interface Workflow { on: Record<string, unknown>; concurrency: { group: string; 'cancel-in-progress': boolean }; env: Record<string, string>; jobs: Record<string, { 'runs-on': string; steps: Step[] }> }

async function load() {
  const content = await readFile(FILE, 'utf8');
  return { content, yaml: parse(content) as Workflow };
}

test('GitHub\'s workflow parser reads nightly.yml without errors', async (t) => {
  const { content } = await load();
  const parsed = parseWorkflow({ name: '.github/workflows/nightly.yml', content }, new NoOperationTraceWriter());
  t.deepEqual(parsed.context.errors.getErrors().map((e) => e.message), []);
  const template = await convertWorkflowTemplate(parsed.context, parsed.value!);
  t.deepEqual(template.errors ?? [], []);
  t.deepEqual(template.jobs.map((j) => j.id.value), ['nightly']);
});

test('the parser is strict: a broken workflow is reported (the test above can fail)', async (t) => {
  const { content } = await load();
  const broken = content.replace('runs-on: ubuntu-24.04', 'runs-on: ubuntu-24.04\n    bogus-key: 1');
  const parsed = parseWorkflow({ name: 'broken.yml', content: broken }, new NoOperationTraceWriter());
  t.true(parsed.context.errors.getErrors().length > 0);
});

test('nightly.yml: schedule and manual runs, one at a time, KVM on ubuntu x86_64, the same npm scripts a person runs', async (t) => {
  const { yaml } = await load();
  t.truthy((yaml.on.schedule as { cron: string }[])[0]!.cron);
  t.true('workflow_dispatch' in yaml.on);
  t.is(yaml.concurrency.group, 'nightly');
  t.false(yaml.concurrency['cancel-in-progress'], 'a running night is never cancelled half-way');
  const job = yaml.jobs.nightly!;
  t.regex(job['runs-on'], /^ubuntu-\d/);
  const runs = job.steps.map((s) => s.run ?? '').join('\n');
  t.true(runs.includes(`echo 'KERNEL=="kvm", GROUP="kvm", MODE="0666", OPTIONS+="static_node=kvm"' | sudo tee /etc/udev/rules.d/99-kvm4all.rules`));
  t.regex(runs, /udevadm trigger --name-match=kvm/);
  const pkg = JSON.parse(await readFile(join(import.meta.dirname, '../../package.json'), 'utf8')) as { scripts: Record<string, string> };
  const scripts = [...runs.matchAll(/npm run ([\w:-]+)/g)].map((m) => m[1]!);
  t.deepEqual([...new Set(scripts)].sort(), ['doctor', 'nightly']);
  for (const s of scripts) t.truthy(pkg.scripts[s], `npm run ${s} exists in package.json`);
  t.regex(runs, /npm run doctor -- --install/);
  t.regex(runs, /npm run nightly -- --out "\$NIGHTS"/);
});

test('nightly.yml: archive cached by the lock, summary, artifacts, release under the asset limit, lock PR, red issue', async (t) => {
  const { yaml } = await load();
  const steps = yaml.jobs.nightly!.steps;
  const restore = steps.find((s) => s.uses?.startsWith('actions/cache/restore@'))!;
  t.regex(String(restore.with!.key), /hashFiles\('image\.lock\.json'\)/);
  t.regex(String(restore.with!.path), /nights/);
  const save = steps.find((s) => s.uses?.startsWith('actions/cache/save@'))!;
  t.regex(String(save.with!.key), /image\.lock\.json/, 'saved under the night\'s refreshed lock');
  t.truthy(steps.find((s) => s.uses?.startsWith('actions/upload-artifact@')));
  const runOf = (pattern: RegExp) => steps.find((s) => s.run && pattern.test(s.run));
  t.regex(runOf(/GITHUB_STEP_SUMMARY/)!.run!, /last-run\.md/);
  t.is(runOf(/gh release create/)!.if, "steps.nightly.outputs.outcome == 'green'");
  t.regex(runOf(/gh release create/)!.run!, /disk-compressed\.qcow2/);
  t.is(Number(yaml.env.RELEASE_ASSET_LIMIT_BYTES), RELEASE_ASSET_WARN_BYTES, 'the workflow and the report warn at the same size');
  t.is(runOf(/RELEASE_ASSET_LIMIT_BYTES/)!.if, "steps.nightly.outputs.outcome == 'green'");
  t.regex(runOf(/gh pr create/)!.run!, /--body-file/);
  t.regex(runOf(/gh pr create/)!.run!, /cp "\$NIGHTS\/\$NIGHT\/image\.lock\.json" image\.lock\.json/);
  const issue = runOf(/gh issue create/)!;
  t.is(issue.if, "steps.nightly.outputs.outcome == 'red'");
  t.regex(issue.run!, /gh issue comment/, 'an open red issue is updated, not duplicated');
  const last = steps.at(-1)!;
  t.is(last.if, 'always()');
  t.regex(last.run!, /1\).*exit 1/);
});

testUnless(missingCommand('shellcheck'), 'every run: block of nightly.yml passes shellcheck', async (t) => {
  const { yaml } = await load();
  for (const step of yaml.jobs.nightly!.steps.filter((s) => s.run)) {
    // Expressions are filled in by the runner before the shell sees the script.
    const script = `#!/bin/bash\nset -eo pipefail\n${step.run!.replace(/\$\{\{[^}]*\}\}/g, 'EXPR')}`;
    const result = await run('shellcheck', ['-s', 'bash', '-'], { input: script, allowFailure: true });
    t.is(result.exitCode, 0, `${step.name}:\n${result.stdout}`);
  }
});
