/* PyTorch checkpoint archives: the zip container torch.save writes (PyTorch >= 1.6).
 *
 * Byte layout (PKWARE APPNOTE 6.3; every integer little-endian):
 *   per entry, in file order:
 *     local header    sig 0x04034b50, needed(2) flags(2) method(2) time(2) date(2)
 *                     crc(4) csize(4) usize(4) namelen(2) extralen(2), name, extra
 *     data            usize bytes; only method 0 (stored) is accepted, so tensor bytes
 *                     are mapped in place, never copied
 *     [descriptor]    when flags bit 3 is set: [sig 0x08074b50] crc(4) csize usize, the
 *                     sizes 8 bytes each when the local extra has a ZIP64 field, else 4
 *   central directory, one record per entry:
 *                     sig 0x02014b50, made(2) needed(2) flags(2) method(2) time(2)
 *                     date(2) crc(4) csize(4) usize(4) namelen(2) extralen(2)
 *                     commentlen(2) disk(2) iattr(2) eattr(4) offset(4), name, extra,
 *                     comment
 *   [ZIP64 end]       sig 0x06064b50, recsize(8) made(2) needed(2) disk(4) cddisk(4)
 *                     entries_here(8) entries(8) cdsize(8) cdoffset(8)
 *   [ZIP64 locator]   sig 0x07064b50, disk(4) zip64_end_offset(8) disks(4)
 *   end record        sig 0x06054b50, disk(2) cddisk(2) entries_here(2) entries(2)
 *                     cdsize(4) cdoffset(4) commentlen(2), comment
 * A saturated field (0xFFFFFFFF, or 0xFFFF for counts) is given by the ZIP64 end record
 * or, in a central record, by its ZIP64 extra field (id 0x0001: usize, csize, offset,
 * disk, each present only when its short field is saturated, in that order). Shards of
 * LLM360's checkpoints are larger than 4 GiB, so ZIP64 is the normal case.
 *
 * torch's writer (miniz) sets flags bit 3, leaves the local sizes zero, pads the local
 * extra with an "FB" field so that data starts 64-byte aligned, and always writes the
 * ZIP64 end record. Its local ZIP64 field is not trustworthy (a zero csize, or the
 * offset instead of the sizes), so with bit 3 the data descriptor is checked instead.
 * The entries are "<archive>/data.pkl" (the pickled state dict, see pickle.h),
 * "<archive>/data/<key>" (one per storage), "<archive>/version" (".data/version" in
 * newer formats) and, since torch 2.0, "<archive>/byteorder"; <archive> is one folder
 * name shared by every entry (torch uses the file's stem, or "archive").
 *
 * Checks made: the end record lies in the last 22 + CKS_ZIP_MAX_COMMENT bytes and its
 * comment ends exactly at the end of the file; with a ZIP64 locator, the ZIP64 end
 * record lies before it and agrees with every non-saturated field of the end record;
 * one disk; the central directory lies inside the file before the end records and is
 * exactly filled by the announced number of records (at most CKS_ZIP_MAX_ENTRIES, and
 * no more than its size can hold). Each record: not encrypted (flags bits 0 and 6),
 * method 0, csize == usize, a name of 1..CKS_ZIP_MAX_NAME bytes without NUL, extra
 * fields inside their bounds and the ZIP64 field present when a field is saturated; its
 * local header lies before the central directory with the same name, method and flags
 * bits 0, 3 and 6, and the local (or, with bit 3, the descriptor's) CRC and sizes equal
 * the central ones; data and descriptor end before the central directory; no two
 * entries overlap; no two have the same name; every name is "<archive>/<rest>" with
 * the same <archive> and a non-empty <rest>. Then: data.pkl exists; a version record
 * exists and is a decimal number in 1..CKS_TORCH_MAX_VERSION; byteorder, when present,
 * is "little"; the CRC-32 of the version and byteorder records is verified
 * (cks_torchzip_check_crc does it for other small entries). Tensor data CRCs are not:
 * that would read every byte up front, which mapping exists to avoid. */
#ifndef CKS_TORCHZIP_H
#define CKS_TORCHZIP_H

#include "map.h"

#include <stddef.h>
#include <stdint.h>

#define CKS_ZIP_MAX_ENTRIES   (1 << 20) /* entries per archive: storages + 3 records */
#define CKS_ZIP_MAX_NAME      1024      /* bytes per entry name */
#define CKS_ZIP_MAX_COMMENT   65535     /* the format's own limit (16-bit length) */
#define CKS_TORCH_MAX_VERSION 10        /* torch's kMaxSupportedFileFormatVersion */

typedef struct {
    const char *name;          /* without "<archive>/"; owned by the archive */
    const unsigned char *data; /* first byte, inside the map; may be unaligned */
    uint64_t size;
    uint32_t crc; /* CRC-32 from the central directory */
} cks_zip_entry;

typedef struct {
    const cks_map *map;     /* borrowed: must outlive the archive */
    char *prefix;           /* the archive folder name (made printable: for messages) */
    cks_zip_entry *entries; /* sorted by name */
    size_t count;
    char *names; /* storage for the entry names */
} cks_torchzip;

/* Reads and checks the container (see above). Entries borrow from m. On error *out is
 * untouched and the message names m->display and the entry. */
int cks_torchzip_open(const cks_map *m, cks_torchzip *out);
void cks_torchzip_release(cks_torchzip *z);

/* The entry "<archive>/<name>", or NULL. Borrowed from z. */
const cks_zip_entry *cks_torchzip_find(const cks_torchzip *z, const char *name);

/* CRC-32 as zip stores it (IEEE 802.3, reflected polynomial 0xEDB88320). */
uint32_t cks_zip_crc32(const void *data, uint64_t n);

/* Verifies an entry's bytes against its CRC-32 (reads them all: small entries only).
 * CKS_EFORMAT naming the entry on mismatch. */
int cks_torchzip_check_crc(const cks_torchzip *z, const cks_zip_entry *e);

#endif
