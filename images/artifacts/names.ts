/** File names of locked inputs in an artifacts directory, the download store and the image (pure). */

export function artifactFileName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.split('/').pop() ?? '');
}

/** `registry.k8s.io/pause:3.10.1` → `registry.k8s.io_pause_3.10.1.oci.tar` */
export function imageArchiveName(ref: string): string {
  return `${ref.replace(/[/:@]/g, '_')}.oci.tar`;
}
