/**
 * What `registries:` and the images pulled from them mean on their own (pure): each certs.d
 * directory written once, docker.io by its one name, every baked workload image by its tag.
 */
import type { ConfigProblem } from '../core/errors.ts';
import type { LabConfig } from './lab-config.ts';

/** Names containerd does not use for Docker Hub's certs.d directory: it looks up `docker.io`. */
const DOCKER_HUB_ALIASES = ['index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com'];

export function validateRegistries(config: Pick<LabConfig, 'registries' | 'workloads'>): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  // Each registry writes certs.d/<host>/, and a mirror also certs.d/<mirrorOf>/: one owner per directory.
  const owners = new Map<string, string>();
  config.registries.forEach((r, i) => {
    const at = `registries.${i}`;
    for (const [field, name] of [['host', r.host], ['mirrorOf', r.mirrorOf]] as const) {
      if (name === undefined || (field === 'mirrorOf' && name === r.host)) continue;
      const port = /:(\d+)$/.exec(name)?.[1];
      if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) problems.push({ path: `${at}.${field}`, message: `port ${port} is not a TCP port (1 to 65535)` });
      const bare = name.replace(/:\d+$/, '');
      if (DOCKER_HUB_ALIASES.includes(bare)) problems.push({ path: `${at}.${field}`, message: `${JSON.stringify(name)} is Docker Hub: write docker.io (containerd reads certs.d/docker.io for every Docker Hub image)` });
      const earlier = owners.get(name);
      if (earlier) problems.push({ path: `${at}.${field}`, message: `${JSON.stringify(name)} is also ${earlier}: containerd has one certs.d/${name}/hosts.toml, so each registry and each mirrored registry appears once` });
      else owners.set(name, `${at}.${field}`);
    }
    if (r.mirrorOf === r.host) problems.push({ path: `${at}.mirrorOf`, message: 'is the registry itself: name the registry it mirrors (e.g. docker.io), or leave it out' });
  });
  // The lock maps each tag to its digest and the image is imported under that name: the one the pod spec uses.
  config.workloads.forEach((w, i) =>
    w.images.forEach((ref, j) => {
      const last = ref.split('/').at(-1)!;
      if (ref.includes('@')) problems.push({ path: `workloads.${i}.images.${j}`, message: `${JSON.stringify(ref)} names a digest: write the tag your manifests use (image:lock records its digest)` });
      else if (!/^[a-z0-9][a-z0-9._-]*:[\w][\w.-]{0,127}$/.test(last)) problems.push({ path: `workloads.${i}.images.${j}`, message: `${JSON.stringify(ref)} has no tag: write the tag your manifests use, e.g. ${JSON.stringify(`${ref}:1.0`)} (an implicit :latest cannot be locked)` });
    }),
  );
  return problems;
}
