#!/usr/bin/env -S npx tsx
// npm run image:fetch-artifacts -- --out DIR: the same command as image:archive (one mechanism).
await import('./image-archive.ts');
