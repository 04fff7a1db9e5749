/**
 * The lock file: the only source of versions the image is built from. Every downloaded input
 * has a URL and a checksum, every container image a digest. `image:lock` writes it;
 * `image:build` reads it and never floats. Reading, writing and diffing are here; refreshing
 * it from the network is refresh.ts.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { z } from 'zod';
import { LabError } from '../../core/errors.ts';

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 in hex');
const digest = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'a digest such as sha256:…');

export const lockedFileSchema = z.object({ url: z.string(), sha256, size: z.number().int().optional() }).strict();
export type LockedFile = z.infer<typeof lockedFileSchema>;

export const lockedPackageSchema = lockedFileSchema.extend({ version: z.string() }).strict();
export type LockedPackage = z.infer<typeof lockedPackageSchema>;

export const lockedImageSchema = z
  .object({
    /** What the tag resolved to (often a multi-platform index). */
    digest,
    /** The linux/amd64 manifest inside it: what is copied into the image. */
    amd64: digest,
  })
  .strict();
export type LockedImage = z.infer<typeof lockedImageSchema>;

const releaseSchema = z.object({ uri: z.string(), sha256, date: z.string() }).strict();

const kubernetesSectionSchema = z
  .object({
    minor: z.string(),
    repository: z.string(),
    keyring: z.object({ url: z.string(), fingerprint: z.string(), sha256: sha256.optional() }).strict(),
    packages: z.record(z.string(), lockedPackageSchema),
  })
  .strict();

/**
 * A single Debian package taken from another suite than the image's (containerd 2 from forky):
 * the .deb by URL and sha256, the suite's InRelease it was read from, and its Packages stanza
 * as signed, so the lock alone says what apt will see.
 */
export const lockedDebianPackageSchema = lockedPackageSchema
  .extend({ name: z.string(), suite: z.string(), release: releaseSchema, stanza: z.string() })
  .strict();
export type LockedDebianPackage = z.infer<typeof lockedDebianPackageSchema>;

/**
 * The next minor (`image:lock --kubernetes 1.38`): what an upgrade rehearsal installs, staged in
 * the image or taken from --artifacts, never from the network during the rehearsal.
 */
export const targetSectionSchema = z
  .object({
    kubernetes: kubernetesSectionSchema,
    /** kubeadm's images for the target version and the add-ons' images, by digest. */
    images: z.record(z.string(), lockedImageSchema),
    /** The add-on manifests the target runs (their versions come from lab/upgrade/addon-support.ts). */
    manifests: z.record(z.string(), lockedFileSchema.partial({ sha256: true })),
    /** The containerd the target's kubelet needs, when the image's is too old. */
    containerd: lockedDebianPackageSchema.optional(),
  })
  .strict();
export type TargetSection = z.infer<typeof targetSectionSchema>;

export const imageLockSchema = z
  .object({
    lockVersion: z.literal(1),
    debian: z
      .object({
        suite: z.string(),
        /** Each suite's InRelease as the lock saw it: a moved mirror is a changed input. */
        releases: z.record(z.string(), releaseSchema),
      })
      .strict(),
    kubernetes: kubernetesSectionSchema,
    manifests: z.record(z.string(), lockedFileSchema.partial({ sha256: true })),
    images: z.record(z.string(), lockedImageSchema),
    /** Debian forky's containerd 2, for `kubernetes.containerd: "2"` images. */
    containerd: lockedDebianPackageSchema.optional(),
    target: targetSectionSchema.optional(),
  })
  .strict();

export type ImageLock = z.infer<typeof imageLockSchema>;

export const DEFAULT_LOCK_FILE = 'image.lock.json';

export async function readImageLock(path: string): Promise<ImageLock> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new LabError(`lock file ${path} not found`, 'run `npm run image:lock` to create it, or pass --lock FILE');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new LabError(`${path} is not valid JSON: ${(error as Error).message}`, 'restore it from git or run `npm run image:lock`');
  }
  const parsed = imageLockSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  - ${i.path.join('.') || '(top)'}: ${i.message}`).join('\n');
    throw new LabError(`${path} has problems:\n${problems}`, 'restore it from git or run `npm run image:lock`');
  }
  return parsed.data;
}

/** Stable key order so a refreshed lock diffs line by line. */
export function renderImageLock(lock: ImageLock): string {
  const sortKeys = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sortKeys);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, x]) => [k, sortKeys(x)]));
    return v;
  };
  const { lockVersion, debian, kubernetes, manifests, images, containerd, target } = lock;
  return (
    JSON.stringify(
      {
        lockVersion,
        debian: sortKeys(debian),
        kubernetes: sortKeys(kubernetes),
        manifests: sortKeys(manifests),
        images: sortKeys(images),
        ...(containerd ? { containerd: sortKeys(containerd) } : {}),
        ...(target ? { target: sortKeys(target) } : {}),
      },
      null,
      2,
    ) + '\n'
  );
}

export async function writeImageLock(path: string, lock: ImageLock): Promise<void> {
  await writeFile(path, renderImageLock(lock));
}

/** Flattens a lock into `path = value` leaves, for diffs and error messages. */
function leaves(value: unknown, prefix = ''): Map<string, string> {
  const out = new Map<string, string>();
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) for (const [p, x] of leaves(v, prefix ? `${prefix}.${k}` : k)) out.set(p, x);
  } else out.set(prefix, String(value));
  return out;
}

/** What changed between two locks, one line per leaf: `+ added`, `- removed`, `~ changed: old → new`. */
export function diffImageLocks(before: ImageLock | undefined, after: ImageLock): string[] {
  const a = before ? leaves(before) : new Map<string, string>();
  const b = leaves(after);
  const lines: string[] = [];
  for (const [k, v] of b) {
    if (!a.has(k)) lines.push(`+ ${k} = ${v}`);
    else if (a.get(k) !== v) lines.push(`~ ${k}: ${a.get(k)} → ${v}`);
  }
  for (const [k, v] of a) if (!b.has(k)) lines.push(`- ${k} = ${v}`);
  return lines;
}
