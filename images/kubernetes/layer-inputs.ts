/** What the Kubernetes layer adds, as locked (a leaf type: recipe.ts and the layer's renderers both read it). */
export interface KubernetesLayerInputs {
  minor: string;
  repository: string;
  /** sha256 of the repository's key file and the fingerprint it must hold. */
  keyringSha256: string;
  keyFingerprint: string;
  packages: Record<string, { version: string; sha256: string }>;
  /** Image reference → the linux/amd64 manifest digest baked in. */
  images: Record<string, string>;
}
