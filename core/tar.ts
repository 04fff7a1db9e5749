/**
 * A small streaming reader for the tar files mmdebstrap writes (ustar with GNU long names
 * and pax headers). Enough to list members, hash their contents and read small files
 * without unpacking, which the hygiene check, the manifest and the reproducibility diff use.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';

export type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'other';

export interface TarEntry {
  path: string; // without the leading "./"
  type: TarEntryType;
  size: number;
  mode: number;
  mtime: number;
  linkTarget: string;
  uid: number;
  gid: number;
  /** sha256 of the contents, when requested. */
  sha256?: string;
  /** Contents, for files the caller asked to read. */
  content?: Buffer;
}

export interface ReadTarOptions {
  hashContents?: boolean;
  /** Return the contents of members for which this returns true (keep them small). */
  readContent?: (path: string) => boolean;
}

export async function readTar(file: string, options: ReadTarOptions = {}): Promise<TarEntry[]> {
  const fh = await open(file, 'r');
  const entries: TarEntry[] = [];
  try {
    const header = Buffer.alloc(512);
    let offset = 0;
    let longName: string | undefined;
    let longLink: string | undefined;
    let pax: Record<string, string> = {};
    for (;;) {
      const { bytesRead } = await fh.read(header, 0, 512, offset);
      if (bytesRead < 512 || header.every((b) => b === 0)) break;
      const fields = parseHeader(header);
      const { size, typeflag } = fields;
      const dataStart = offset + 512;
      const next = dataStart + Math.ceil(size / 512) * 512;
      if (typeflag === 'L' || typeflag === 'K' || typeflag === 'x' || typeflag === 'g') {
        const body = Buffer.alloc(size);
        await fh.read(body, 0, size, dataStart);
        if (typeflag === 'L') longName = cString(body);
        else if (typeflag === 'K') longLink = cString(body);
        else if (typeflag === 'x') pax = parsePax(body);
        offset = next;
        continue;
      }
      const rawPath = pax.path ?? longName ?? fields.path;
      const path = rawPath.replace(/^\.\//, '').replace(/\/$/, '');
      const entry: TarEntry = {
        path,
        type: entryType(typeflag),
        size: pax.size ? Number(pax.size) : size,
        mode: fields.mode,
        uid: fields.uid,
        gid: fields.gid,
        mtime: pax.mtime ? Math.floor(Number(pax.mtime)) : fields.mtime,
        linkTarget: pax.linkpath ?? longLink ?? fields.linkName,
      };
      if (entry.type === 'file' && (options.hashContents || options.readContent?.(path))) {
        const hash = createHash('sha256');
        const chunks: Buffer[] = [];
        const keep = options.readContent?.(path) ?? false;
        for (let pos = 0; pos < size; ) {
          const chunk = Buffer.alloc(Math.min(1 << 20, size - pos));
          await fh.read(chunk, 0, chunk.length, dataStart + pos);
          hash.update(chunk);
          if (keep) chunks.push(chunk);
          pos += chunk.length;
        }
        if (options.hashContents) entry.sha256 = hash.digest('hex');
        if (keep) entry.content = Buffer.concat(chunks);
      }
      entries.push(entry);
      longName = longLink = undefined;
      pax = {};
      offset = next;
    }
  } finally {
    await fh.close();
  }
  return entries;
}

/** One ustar header block's fields (no GNU or pax extensions: the readers apply those). */
function parseHeader(header: Buffer) {
  const prefix = cString(header.subarray(345, 500));
  const name = cString(header.subarray(0, 100));
  return {
    path: prefix ? `${prefix}/${name}` : name,
    size: parseOctal(header.subarray(124, 136)),
    typeflag: String.fromCharCode(header[156]!),
    mode: parseOctal(header.subarray(100, 108)),
    uid: parseOctal(header.subarray(108, 116)),
    gid: parseOctal(header.subarray(116, 124)),
    mtime: parseOctal(header.subarray(136, 148)),
    linkName: cString(header.subarray(157, 257)),
  };
}

function entryType(flag: string): TarEntryType {
  if (flag === '0' || flag === '\0' || flag === '7') return 'file';
  if (flag === '5') return 'dir';
  if (flag === '2') return 'symlink';
  if (flag === '1') return 'hardlink';
  return 'other';
}

function cString(buf: Buffer): string {
  const end = buf.indexOf(0);
  return buf.subarray(0, end === -1 ? buf.length : end).toString('utf8');
}

function parseOctal(buf: Buffer): number {
  // GNU base-256 for large values
  if (buf[0]! & 0x80) {
    let value = 0;
    for (let i = 1; i < buf.length; i++) value = value * 256 + buf[i]!;
    return value;
  }
  const text = cString(buf).trim();
  return text ? parseInt(text, 8) : 0;
}

function parsePax(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < body.length) {
    const space = body.indexOf(0x20, pos);
    if (space === -1) break;
    const len = Number(body.subarray(pos, space).toString());
    if (!len) break;
    const record = body.subarray(space + 1, pos + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    out[record.slice(0, eq)] = record.slice(eq + 1);
    pos += len;
  }
  return out;
}

export interface TarWriteEntry {
  /** Relative path; a trailing `/` makes a directory. */
  path: string;
  mode: number;
  content?: Buffer;
}

/**
 * A ustar archive in memory (pure): for streaming files to a guest's `tar -x` on stdin, so a
 * secret among them is never a file on the host. Owner root/0, mtime 0.
 */
export function renderTar(entries: TarWriteEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const isDir = e.path.endsWith('/');
    const content = isDir ? Buffer.alloc(0) : (e.content ?? Buffer.alloc(0));
    const header = Buffer.alloc(512);
    let name = e.path;
    let prefix = '';
    if (Buffer.byteLength(name) > 100) {
      // ustar keeps up to 155 bytes of directories in `prefix` and the rest in `name`.
      const split = [...name.matchAll(/\//g)].map((m) => m.index!).reverse().find((i) => Buffer.byteLength(name.slice(i + 1)) <= 100 && Buffer.byteLength(name.slice(0, i)) <= 155);
      if (split === undefined) throw new Error(`tar: path too long for ustar: ${e.path}`);
      prefix = name.slice(0, split);
      name = name.slice(split + 1);
    }
    const put = (text: string, offset: number, length: number) => header.write(text, offset, length, 'utf8');
    const octal = (n: number, length: number) => n.toString(8).padStart(length - 1, '0') + '\0';
    put(name, 0, 100);
    put(octal(e.mode & 0o7777, 8), 100, 8);
    put(octal(0, 8), 108, 8);
    put(octal(0, 8), 116, 8);
    put(octal(content.length, 12), 124, 12);
    put(octal(0, 12), 136, 12);
    put('        ', 148, 8);
    put(isDir ? '5' : '0', 156, 1);
    put('ustar\0', 257, 6);
    put('00', 263, 2);
    put('root', 265, 32);
    put('root', 297, 32);
    put(prefix, 345, 155);
    let sum = 0;
    for (const byte of header) sum += byte;
    put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
    blocks.push(header, content, Buffer.alloc((512 - (content.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** The members of an archive renderTar wrote (pure): its inverse, for reading a rendered seed back. */
export function readTarBuffer(archive: Buffer): TarWriteEntry[] {
  const entries: TarWriteEntry[] = [];
  for (let offset = 0; offset + 512 <= archive.length; ) {
    const header = archive.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break;
    const { path, size, typeflag, mode } = parseHeader(header);
    const isDir = typeflag === '5';
    const start = offset + 512;
    entries.push({ path: path + (isDir && !path.endsWith('/') ? '/' : ''), mode, ...(isDir ? {} : { content: Buffer.from(archive.subarray(start, start + size)) }) });
    offset = start + Math.ceil(size / 512) * 512;
  }
  return entries;
}
