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
  /** containerd 2 instead of the suite's 1.7 (kubernetes.containerd: "2"): the pinned .deb from another suite. */
  containerd2?: { name: string; version: string; sha256: string; suite: string };
  /** The next minor's payload, staged (not installed): `image:build --stage-upgrade`. */
  stagedUpgrade?: StagedUpgradeInputs;
}

export interface StagedUpgradeInputs {
  minor: string;
  /** Package name → locked version and sha256 (the target's Kubernetes packages, and containerd 2 when it needs it). */
  packages: Record<string, { version: string; sha256: string }>;
  images: Record<string, string>;
  /** The lock's target section as JSON: the rehearsal reads versions and digests from it. */
  targetJson: string;
}
