/** Human summary of a built image (pure). */
import { formatSize } from '../core/units.ts';
import type { BuiltImage } from './build.ts';

export function renderImageSummary(image: BuiltImage): string {
  const m = image.manifest;
  const lines = [
    `image ${m.inputsHash.slice(0, 16)} (${m.suite}, ${m.packages.length} packages)`,
    `  disk:       ${image.disk}  ${formatSize(m.files['disk.qcow2']?.bytes ?? 0)}`,
    `  compressed: ${image.compressed}  ${formatSize(m.files['disk-compressed.qcow2']?.bytes ?? 0)}`,
    `  raw size:   ${formatSize(m.rawBytes)}`,
    `  layers:     ${Object.entries(image.cacheHits).map(([k, hit]) => `${k} ${hit ? 'cached' : 'built'}`).join(', ')}`,
    m.kubernetes ? `  kubernetes: ${m.kubernetes.minor}, ${m.kubernetes.images.length} images baked in` : '  kubernetes: none (OS-only image)',
    '',
  ];
  return lines.join('\n');
}
