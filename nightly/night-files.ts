/** File names in a night's directory under `nightly --out DIR`: one place. */
import { REPORT_FILES } from '../lab/acceptance/suite.ts';

export const NIGHT_FILES = {
  image: 'disk-compressed.qcow2',
  sums: 'SHA256SUMS',
  manifest: 'manifest.json',
  lock: 'image.lock.json',
  packages: 'packages.json',
  night: 'night.json',
  timings: 'timings.json',
  reportMarkdown: 'report.md',
  reportJson: 'report.json',
  log: 'nightly.log',
  ...REPORT_FILES,
} as const;

/** In DIR itself: the link to the newest green night, and the input archive nights share. */
export const NIGHTS_DIR_FILES = { latest: 'latest', archive: 'archive', work: '.work' } as const;
