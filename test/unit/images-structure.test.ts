/**
 * images/ structure: no import cycle between recipe.ts and images/kubernetes/ (the layer's
 * renderers read the leaf type in kubernetes/layer-inputs.ts), and images/ takes the lab config
 * only from its leaf, config/lab-config.ts.
 */
import test from 'ava';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? tsFiles(path) : name.endsWith('.ts') ? [path] : [];
  });
}

/** Relative imports of a module (static `import … from` and `export … from`, types included), resolved to files. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gms)].map((m) => m[1]!);
  return specs.map((s) => resolve(dirname(file), s)).filter((p) => existsSync(p));
}

function reaches(from: string, target: string, seen = new Set<string>()): string[] | undefined {
  for (const next of importsOf(from)) {
    if (next === target) return [from, next];
    if (seen.has(next) || !next.startsWith(join(ROOT, 'images'))) continue;
    seen.add(next);
    const path = reaches(next, target, seen);
    if (path) return [from, ...path];
  }
  return undefined;
}

test('no module under images/kubernetes/ imports images/recipe.ts, directly or through images/', (t) => {
  const recipe = join(ROOT, 'images/recipe.ts');
  for (const file of tsFiles(join(ROOT, 'images/kubernetes'))) {
    const path = reaches(file, recipe);
    t.is(path, undefined, path?.map((p) => relative(ROOT, p)).join(' → '));
  }
  t.true(importsOf(recipe).some((p) => p.startsWith(join(ROOT, 'images/kubernetes/'))), 'recipe.ts does use the Kubernetes layer (the direction that stays)');
});

test('images/ imports the lab config only from config/lab-config.ts', (t) => {
  const offenders = tsFiles(join(ROOT, 'images')).flatMap((file) =>
    importsOf(file).filter((p) => p.startsWith(join(ROOT, 'config/')) && p !== join(ROOT, 'config/lab-config.ts')).map((p) => `${relative(ROOT, file)} → ${relative(ROOT, p)}`),
  );
  t.deepEqual(offenders, []);
});
