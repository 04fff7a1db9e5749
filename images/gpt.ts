/**
 * The image's GUID partition table, grown to a larger disk (pure). A lab's overlay is larger
 * than the image: instead of cloud-init's growpart in the guest (two runs of a shell script
 * around sfdisk, ~5 s of cloud-init's final stage under TCG), the host writes the table a grown
 * disk has: the last partition reaches the last usable sector, the backup table moves to the
 * disk's end, and the protective MBR covers the disk. The filesystem still grows in the guest
 * (resize2fs, online).
 */
import { crc32 } from 'node:zlib';

export const SECTOR_BYTES = 512;
/** What is read from the image's start: the protective MBR, the header, 128 entries of 128 bytes. */
export const GPT_HEAD_SECTORS = 34;
const ENTRY_ARRAY_SECTORS = 32;
const SIGNATURE = 'EFI PART';

export interface DiskWrite {
  /** Byte offset on the disk. */
  offset: number;
  data: Buffer;
}

export interface GrownGpt {
  writes: DiskWrite[];
  /** 1-based number of the partition that grew, and its new last sector. */
  partition: number;
  lastLba: number;
}

function headerCrc(header: Buffer, size: number): number {
  const copy = Buffer.from(header.subarray(0, size));
  copy.writeUInt32LE(0, 16);
  return crc32(copy);
}

interface GptHead {
  header: Buffer;
  headerSize: number;
  /** A copy of the entry array. */
  entries: Buffer;
  count: number;
  entrySize: number;
}

/** The primary header and entry array of `head` (the disk's first 34 sectors), checksums checked; undefined without a GPT. */
function readGptHead(head: Buffer): GptHead | undefined {
  if (head.length < GPT_HEAD_SECTORS * SECTOR_BYTES) throw new Error(`the partition table needs the disk's first ${GPT_HEAD_SECTORS} sectors, got ${head.length} bytes`);
  const header = head.subarray(SECTOR_BYTES, 2 * SECTOR_BYTES);
  if (header.toString('latin1', 0, 8) !== SIGNATURE) return undefined;
  const headerSize = header.readUInt32LE(12);
  if (headerSize < 92 || headerSize > SECTOR_BYTES) throw new Error(`GPT header size ${headerSize} is invalid`);
  if (header.readUInt32LE(16) !== headerCrc(header, headerSize)) throw new Error("the GPT header's checksum does not match");
  const entriesLba = Number(header.readBigUInt64LE(72));
  const count = header.readUInt32LE(80);
  const entrySize = header.readUInt32LE(84);
  if (entriesLba !== 2 || count * entrySize !== ENTRY_ARRAY_SECTORS * SECTOR_BYTES) throw new Error(`unexpected GPT entry array (LBA ${entriesLba}, ${count} × ${entrySize} bytes)`);
  const entries = Buffer.from(head.subarray(2 * SECTOR_BYTES, GPT_HEAD_SECTORS * SECTOR_BYTES));
  if (header.readUInt32LE(88) !== crc32(entries)) throw new Error("the GPT partition entries' checksum does not match");
  return { header, headerSize, entries, count, entrySize };
}

/** The EFI system partition's type GUID as GPT stores it (the first three fields little-endian). */
const ESP_TYPE_GUID = Buffer.from('28732ac11ff8d211ba4b00a0c93ec93b', 'hex');

/** Where the EFI system partition lies, in bytes; undefined without a GPT or an ESP (pure). */
export function findEspExtent(head: Buffer): { offset: number; bytes: number } | undefined {
  const gpt = readGptHead(head);
  if (!gpt) return undefined;
  for (let i = 0; i < gpt.count; i++) {
    const entry = gpt.entries.subarray(i * gpt.entrySize, (i + 1) * gpt.entrySize);
    if (!entry.subarray(0, 16).equals(ESP_TYPE_GUID)) continue;
    const first = Number(entry.readBigUInt64LE(32));
    const last = Number(entry.readBigUInt64LE(40));
    return { offset: first * SECTOR_BYTES, bytes: (last - first + 1) * SECTOR_BYTES };
  }
  return undefined;
}

/**
 * The writes that grow the last partition of the table in `head` (the image's first 34 sectors)
 * to a disk of `diskBytes`; undefined when the disk is no larger or has no GPT. Throws on a damaged
 * GPT or one without a protective MBR.
 */
export function planGrownGpt(head: Buffer, diskBytes: number): GrownGpt | undefined {
  // A disk without a partition table (a blank test disk) has nothing to grow.
  const gpt = readGptHead(head);
  if (!gpt) return undefined;
  const { header, headerSize, entries, count, entrySize } = gpt;

  const oldLastUsable = Number(header.readBigUInt64LE(48));
  const sectors = Math.floor(diskBytes / SECTOR_BYTES);
  const lastUsable = sectors - 1 - ENTRY_ARRAY_SECTORS - 1;
  if (lastUsable <= oldLastUsable) return undefined;

  // The partition that ends last is the one that grows.
  let last = -1;
  let lastEnd = -1;
  for (let i = 0; i < count; i++) {
    const entry = entries.subarray(i * entrySize, (i + 1) * entrySize);
    if (entry.subarray(0, 16).every((b) => b === 0)) continue;
    const end = Number(entry.readBigUInt64LE(40));
    if (end > lastEnd) [last, lastEnd] = [i, end];
  }
  if (last < 0) throw new Error('the GPT has no partitions');
  entries.writeBigUInt64LE(BigInt(lastUsable), last * entrySize + 40);
  const entriesCrc = crc32(entries);

  const renderHeader = (current: number, backup: number, entryLba: number): Buffer => {
    const sector = Buffer.alloc(SECTOR_BYTES);
    header.copy(sector, 0, 0, headerSize);
    sector.writeBigUInt64LE(BigInt(current), 24);
    sector.writeBigUInt64LE(BigInt(backup), 32);
    sector.writeBigUInt64LE(BigInt(lastUsable), 48);
    sector.writeBigUInt64LE(BigInt(entryLba), 72);
    sector.writeUInt32LE(entriesCrc, 88);
    sector.writeUInt32LE(headerCrc(sector, headerSize), 16);
    return sector;
  };
  const mbr = Buffer.from(head.subarray(0, SECTOR_BYTES));
  if (mbr.readUInt16LE(510) !== 0xaa55 || mbr[446 + 4] !== 0xee) throw new Error('no protective MBR in the first sector');
  mbr.writeUInt32LE(Math.min(sectors - 1, 0xffffffff), 446 + 12);

  const backupEntriesLba = sectors - 1 - ENTRY_ARRAY_SECTORS;
  return {
    partition: last + 1,
    lastLba: lastUsable,
    writes: [
      { offset: 0, data: Buffer.concat([mbr, renderHeader(1, sectors - 1, 2), entries]) },
      { offset: backupEntriesLba * SECTOR_BYTES, data: Buffer.concat([entries, renderHeader(sectors - 1, 1, backupEntriesLba)]) },
    ],
  };
}
