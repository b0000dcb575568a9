/* The zip container of torch.save checkpoints (layout and checks: torchzip.h). Reads
 * the end records and the central directory, checks every local header against its
 * central record, and hands out entries as spans of the mapped file. Nothing is
 * decompressed or copied: only stored entries are accepted. */
#include "torchzip.h"
#include "error.h"

#include <stdlib.h>
#include <string.h>

#define SIG_LOCAL   0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_DESC    0x08074b50u
#define SIG_END     0x06054b50u
#define SIG_END64   0x06064b50u
#define SIG_LOC64   0x07064b50u

#define LOCAL_LEN   30u
#define CENTRAL_LEN 46u
#define END_LEN     22u
#define END64_LEN   56u
#define LOC64_LEN   20u

#define FLAG_ENCRYPTED  0x0001u
#define FLAG_DESCRIPTOR 0x0008u
#define FLAG_STRONG_ENC 0x0040u
#define FLAGS_COMPARED  (FLAG_ENCRYPTED | FLAG_DESCRIPTOR | FLAG_STRONG_ENC)

#define SMALL_RECORD_MAX 64u /* version and byteorder hold a few bytes */

static uint16_t rd16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t rd64(const unsigned char *p)
{
    return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32);
}

uint32_t cks_zip_crc32(const void *data, uint64_t n)
{
    const unsigned char *p = data;
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    uint32_t c = 0xFFFFFFFFu;
    for (uint64_t i = 0; i < n; i++)
        c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* One central record and what its local header told us. */
typedef struct {
    const unsigned char *name;
    size_t namelen;
    uint16_t flags, method;
    uint32_t crc;
    uint64_t csize, usize, offset;
    uint64_t data_at, end; /* data start; end of data and descriptor */
} zrec;

typedef struct {
    uint64_t entries, cd_offset, cd_size;
    uint64_t cd_limit; /* the central directory must end at or before this */
} zend;

/* A record's name for messages (untrusted bytes made printable). */
#define RECNAME(r) cks_printable((char[160]){0}, 160, (r)->name, (r)->namelen)

static int find_end64(const cks_map *m, uint64_t loc, zend *e, uint16_t n16, uint32_t size32,
                      uint32_t off32)
{
    const char *disp = m->display;
    const unsigned char *p = m->data + loc;
    uint64_t at = rd64(p + 8);
    if (rd32(p + 4) != 0 || rd32(p + 16) != 1)
        return cks_error_set(CKS_EUNSUPPORTED, "%s: a multi-disk zip archive", disp);
    if (at > loc || loc - at < END64_LEN)
        return cks_error_set(CKS_EFORMAT,
                             "%s: the ZIP64 end record offset %llu does not lie before its "
                             "locator at %llu",
                             disp, (unsigned long long)at, (unsigned long long)loc);
    const unsigned char *r = m->data + at;
    uint64_t recsize = rd64(r + 4);
    if (rd32(r) != SIG_END64 || recsize < END64_LEN - 12 || recsize > loc - at - 12)
        return cks_error_set(CKS_EFORMAT, "%s: no valid ZIP64 end record at offset %llu", disp,
                             (unsigned long long)at);
    if (rd32(r + 16) != 0 || rd32(r + 20) != 0)
        return cks_error_set(CKS_EUNSUPPORTED, "%s: a multi-disk zip archive", disp);
    e->entries = rd64(r + 32);
    e->cd_size = rd64(r + 40);
    e->cd_offset = rd64(r + 48);
    e->cd_limit = at;
    if (rd64(r + 24) != e->entries || (n16 != 0xFFFF && n16 != e->entries) ||
        (size32 != 0xFFFFFFFFu && size32 != e->cd_size) ||
        (off32 != 0xFFFFFFFFu && off32 != e->cd_offset))
        return cks_error_set(CKS_EFORMAT, "%s: the ZIP64 end record disagrees with the end record",
                             disp);
    return 0;
}

/* torch.save before PyTorch 1.6 (or with _use_new_zipfile_serialization=False) writes a
 * pickle stream, not a zip: protocol 2, then the magic number 0x1950a86a20f9469cfc6c as a
 * LONG1. Named in the refusal so that the user knows what to do about it. */
static int is_legacy_torch(const cks_map *m)
{
    static const unsigned char magic[14] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c,
                                            0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
    return m->size >= sizeof magic && memcmp(m->data, magic, sizeof magic) == 0;
}

static int find_end(const cks_map *m, zend *e)
{
    const char *disp = m->display;
    size_t size = m->size;
    if (is_legacy_torch(m))
        return cks_error_set(CKS_EUNSUPPORTED,
                             "%s: a legacy torch.save file (PyTorch before 1.6, not a zip "
                             "archive); load it in PyTorch and save it again with "
                             "torch.save(state_dict, path), or as safetensors",
                             disp);
    if (size < END_LEN)
        return cks_error_set(CKS_EFORMAT, "%s: %zu bytes, too short for a zip archive", disp, size);
    /* the end record is last, followed only by its comment */
    size_t lo = size - END_LEN > CKS_ZIP_MAX_COMMENT ? size - END_LEN - CKS_ZIP_MAX_COMMENT : 0;
    size_t at = size - END_LEN + 1;
    int found = 0;
    while (at-- > lo) {
        const unsigned char *p = m->data + at;
        if (rd32(p) == SIG_END && at + END_LEN + rd16(p + 20) == size) {
            found = 1;
            break;
        }
    }
    if (!found)
        return cks_error_set(CKS_EFORMAT,
                             "%s: no zip end record in its last %zu bytes (not a zip archive, "
                             "or truncated)",
                             disp, size - lo);
    const unsigned char *p = m->data + at;
    if (rd16(p + 4) != 0 || rd16(p + 6) != 0 || rd16(p + 8) != rd16(p + 10))
        return cks_error_set(CKS_EUNSUPPORTED, "%s: a multi-disk zip archive", disp);
    uint16_t n16 = rd16(p + 10);
    uint32_t size32 = rd32(p + 12), off32 = rd32(p + 16);
    if (at >= LOC64_LEN && rd32(m->data + at - LOC64_LEN) == SIG_LOC64)
        return find_end64(m, at - LOC64_LEN, e, n16, size32, off32);
    e->entries = n16;
    e->cd_size = size32;
    e->cd_offset = off32;
    e->cd_limit = at;
    return 0;
}

/* Walks extra fields; returns the ZIP64 field (id 1) or NULL. Trailing bytes too short
 * for a field header are ignored, as Python's zipfile does; a field running past the
 * extra is an error (-1). */
static int find_zip64(const unsigned char *x, size_t len, const unsigned char **f, size_t *flen)
{
    *f = NULL;
    *flen = 0;
    size_t at = 0;
    while (len - at >= 4) {
        uint16_t id = rd16(x + at), n = rd16(x + at + 2);
        if (n > len - at - 4)
            return -1;
        if (id == 0x0001 && !*f) {
            *f = x + at + 4;
            *flen = n;
        }
        at += 4 + (size_t)n;
    }
    return 0;
}

/* Replaces saturated central fields by their ZIP64 values, in the order the format
 * fixes: usize, csize, offset, disk. */
static int central_zip64(const char *disp, zrec *r, const unsigned char *extra, size_t len,
                         uint16_t disk)
{
    const unsigned char *f;
    size_t flen, k = 0;
    if (find_zip64(extra, len, &f, &flen) != 0)
        return cks_error_set(CKS_EFORMAT, "%s: entry '%s' has a malformed extra field", disp,
                             RECNAME(r));
    uint64_t *fields[3] = {&r->usize, &r->csize, &r->offset};
    for (int i = 0; i < 3; i++) {
        if (*fields[i] != 0xFFFFFFFFu)
            continue;
        if (!f || flen < k + 8)
            return cks_error_set(CKS_EFORMAT,
                                 "%s: entry '%s' has a saturated size or offset and no ZIP64 "
                                 "value for it",
                                 disp, RECNAME(r));
        *fields[i] = rd64(f + k);
        k += 8;
    }
    if (disk == 0xFFFF) {
        if (!f || flen < k + 4 || rd32(f + k) != 0)
            return cks_error_set(CKS_EUNSUPPORTED, "%s: a multi-disk zip archive", disp);
    } else if (disk != 0) {
        return cks_error_set(CKS_EUNSUPPORTED, "%s: a multi-disk zip archive", disp);
    }
    return 0;
}

/* Reads central record number i at *at (advanced past it). */
static int read_central(const cks_map *m, const zend *e, size_t i, uint64_t *at, zrec *r)
{
    const char *disp = m->display;
    uint64_t cd_end = e->cd_offset + e->cd_size;
    if (cd_end - *at < CENTRAL_LEN || rd32(m->data + *at) != SIG_CENTRAL)
        return cks_error_set(CKS_EFORMAT,
                             "%s: central directory record %zu of %llu is missing or damaged", disp,
                             i + 1, (unsigned long long)e->entries);
    const unsigned char *p = m->data + *at;
    size_t nl = rd16(p + 28), xl = rd16(p + 30), cl = rd16(p + 32);
    if (cd_end - *at - CENTRAL_LEN < (uint64_t)nl + xl + cl)
        return cks_error_set(
            CKS_EFORMAT, "%s: central directory record %zu runs past the directory", disp, i + 1);
    memset(r, 0, sizeof *r);
    r->name = p + CENTRAL_LEN;
    r->namelen = nl;
    r->flags = rd16(p + 8);
    r->method = rd16(p + 10);
    r->crc = rd32(p + 16);
    r->csize = rd32(p + 20);
    r->usize = rd32(p + 24);
    r->offset = rd32(p + 42);
    *at += CENTRAL_LEN + nl + xl + cl;
    if (nl == 0 || nl > CKS_ZIP_MAX_NAME || memchr(r->name, 0, nl))
        return cks_error_set(CKS_EFORMAT,
                             "%s: central directory record %zu has a name of %zu bytes (1..%d, "
                             "no NUL)",
                             disp, i + 1, nl, CKS_ZIP_MAX_NAME);
    if (r->flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENC))
        return cks_error_set(CKS_EUNSUPPORTED, "%s: entry '%s' is encrypted", disp, RECNAME(r));
    if (r->method != 0)
        return cks_error_set(CKS_EUNSUPPORTED,
                             "%s: entry '%s' is compressed (method %u); torch.save stores "
                             "entries uncompressed so they can be mapped in place (was the file "
                             "re-zipped?)",
                             disp, RECNAME(r), r->method);
    int err = central_zip64(disp, r, r->name + nl, xl, rd16(p + 34));
    if (err)
        return err;
    if (r->csize != r->usize)
        return cks_error_set(
            CKS_EFORMAT, "%s: stored entry '%s' has compressed size %llu != size %llu", disp,
            RECNAME(r), (unsigned long long)r->csize, (unsigned long long)r->usize);
    return 0;
}

/* The data descriptor after r's data: [sig] crc csize usize, sizes 8 bytes when wide.
 * Sets r->end past it. */
static int check_descriptor(const cks_map *m, const zend *e, zrec *r, uint64_t data_end, int wide)
{
    uint64_t room = e->cd_offset - data_end, body = wide ? 20 : 12;
    const unsigned char *p = m->data + data_end;
    for (int sig = 1; sig >= 0; sig--) {
        uint64_t len = body + (sig ? 4 : 0);
        if (room < len || (sig && rd32(p) != SIG_DESC))
            continue;
        const unsigned char *q = p + (sig ? 4 : 0);
        uint64_t cs = wide ? rd64(q + 4) : rd32(q + 4), us = wide ? rd64(q + 12) : rd32(q + 8);
        if (rd32(q) == r->crc && cs == r->csize && us == r->usize) {
            r->end = data_end + len;
            return 0;
        }
    }
    return cks_error_set(CKS_EFORMAT,
                         "%s: entry '%s': its data descriptor is missing or disagrees with the "
                         "central directory (CRC or sizes)",
                         m->display, RECNAME(r));
}

/* Checks r's local header against its central record; sets data_at and end. */
static int check_local(const cks_map *m, const zend *e, zrec *r)
{
    const char *disp = m->display;
    uint64_t off = r->offset;
    if (off > e->cd_offset || e->cd_offset - off < LOCAL_LEN || rd32(m->data + off) != SIG_LOCAL)
        return cks_error_set(CKS_EFORMAT,
                             "%s: entry '%s': no local header at offset %llu (before the "
                             "central directory at %llu)",
                             disp, RECNAME(r), (unsigned long long)off,
                             (unsigned long long)e->cd_offset);
    const unsigned char *p = m->data + off;
    size_t nl = rd16(p + 26), xl = rd16(p + 28);
    uint64_t room = e->cd_offset - off - LOCAL_LEN;
    if (room < (uint64_t)nl + xl)
        return cks_error_set(CKS_EFORMAT, "%s: entry '%s': local header runs past its space", disp,
                             RECNAME(r));
    if (nl != r->namelen || memcmp(p + LOCAL_LEN, r->name, nl) != 0 || rd16(p + 8) != r->method ||
        (rd16(p + 6) & FLAGS_COMPARED) != (r->flags & FLAGS_COMPARED))
        return cks_error_set(CKS_EFORMAT,
                             "%s: entry '%s': the local header disagrees with the central "
                             "directory (name, method or flags)",
                             disp, RECNAME(r));
    const unsigned char *f;
    size_t flen;
    if (find_zip64(p + LOCAL_LEN + nl, xl, &f, &flen) != 0)
        return cks_error_set(CKS_EFORMAT, "%s: entry '%s': malformed local extra field", disp,
                             RECNAME(r));
    uint32_t lcrc = rd32(p + 14);
    uint64_t lcs = rd32(p + 18), lus = rd32(p + 22);
    int desc = (r->flags & FLAG_DESCRIPTOR) != 0, agree;
    if (desc) { /* values follow the data; the header may hold zeros */
        agree = (lcrc == 0 || lcrc == r->crc) &&
                (lcs == 0 || lcs == 0xFFFFFFFFu || lcs == r->csize) &&
                (lus == 0 || lus == 0xFFFFFFFFu || lus == r->usize);
    } else {
        if ((lcs == 0xFFFFFFFFu || lus == 0xFFFFFFFFu) && f && flen >= 16) {
            lus = rd64(f); /* a local ZIP64 field holds both sizes */
            lcs = rd64(f + 8);
        }
        agree = lcrc == r->crc && lcs == r->csize && lus == r->usize;
    }
    if (!agree)
        return cks_error_set(CKS_EFORMAT,
                             "%s: entry '%s': the local header disagrees with the central "
                             "directory (CRC or sizes)",
                             disp, RECNAME(r));
    r->data_at = off + LOCAL_LEN + nl + xl;
    if (e->cd_offset - r->data_at < r->usize)
        return cks_error_set(CKS_EFORMAT,
                             "%s: entry '%s': %llu bytes at offset %llu run past the central "
                             "directory at %llu",
                             disp, RECNAME(r), (unsigned long long)r->usize,
                             (unsigned long long)r->data_at, (unsigned long long)e->cd_offset);
    r->end = r->data_at + r->usize;
    return desc ? check_descriptor(m, e, r, r->end, f != NULL) : 0;
}

static int cmp_offset(const void *a, const void *b)
{
    const zrec *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const cks_zip_entry *)a)->name, ((const cks_zip_entry *)b)->name);
}

/* Reads every central record and checks its local header; no two entries may share
 * bytes (overlapping entries are how zip bombs multiply their size). */
static int read_records(const cks_map *m, const zend *e, zrec *recs)
{
    uint64_t at = e->cd_offset;
    int err;
    for (size_t i = 0; i < e->entries; i++) {
        if ((err = read_central(m, e, i, &at, &recs[i])) != 0 ||
            (err = check_local(m, e, &recs[i])) != 0)
            return err;
    }
    if (at != e->cd_offset + e->cd_size)
        return cks_error_set(CKS_EFORMAT,
                             "%s: the central directory has %llu bytes after its %llu records",
                             m->display, (unsigned long long)(e->cd_offset + e->cd_size - at),
                             (unsigned long long)e->entries);
    qsort(recs, e->entries, sizeof *recs, cmp_offset);
    for (size_t i = 1; i < e->entries; i++) {
        if (recs[i].offset < recs[i - 1].end)
            return cks_error_set(CKS_EFORMAT, "%s: entries '%s' and '%s' overlap", m->display,
                                 RECNAME(&recs[i - 1]), RECNAME(&recs[i]));
    }
    return 0;
}

/* Splits names at the archive folder, copies them, sorts, refuses duplicates. */
static int build_entries(const cks_map *m, const zrec *recs, size_t n, cks_torchzip *z)
{
    size_t total = 0, plen = 0;
    const char *disp = m->display;
    for (size_t i = 0; i < n; i++)
        total += recs[i].namelen + 1;
    if (!(z->names = malloc(total)) || !(z->entries = calloc(n, sizeof *z->entries)))
        return cks_error_set(CKS_ENOMEM, "out of memory");
    char *w = z->names;
    for (size_t i = 0; i < n; i++) {
        const zrec *r = &recs[i];
        const unsigned char *slash = memchr(r->name, '/', r->namelen);
        size_t pl = slash ? (size_t)(slash - r->name) : 0;
        if (!slash || pl == 0 || pl + 1 == r->namelen)
            return cks_error_set(CKS_EFORMAT,
                                 "%s: entry '%s' is not '<archive>/<name>' (not a torch.save "
                                 "archive)",
                                 disp, RECNAME(r));
        if (i == 0) {
            plen = pl;
        } else if (pl != plen || memcmp(r->name, recs[0].name, pl) != 0) {
            return cks_error_set(CKS_EFORMAT,
                                 "%s: entries '%s' and '%s' lie in different archive "
                                 "folders",
                                 disp, RECNAME(&recs[0]), RECNAME(r));
        }
        memcpy(w, r->name + pl + 1, r->namelen - pl - 1);
        w[r->namelen - pl - 1] = '\0';
        z->entries[i] = (cks_zip_entry){w, m->data + r->data_at, r->usize, r->crc};
        w += r->namelen - pl;
    }
    z->count = n;
    qsort(z->entries, n, sizeof *z->entries, cmp_entry);
    for (size_t i = 1; i < n; i++)
        if (strcmp(z->entries[i].name, z->entries[i - 1].name) == 0)
            return cks_error_set(
                CKS_EFORMAT, "%s: entry '%s' appears twice", disp,
                cks_printable((char[160]){0}, 160, z->entries[i].name, strlen(z->entries[i].name)));
    char shown[160];
    if (n > 0 && !(z->prefix = strdup(cks_printable(shown, sizeof shown, recs[0].name, plen))))
        return cks_error_set(CKS_ENOMEM, "out of memory");
    return 0;
}

const cks_zip_entry *cks_torchzip_find(const cks_torchzip *z, const char *name)
{
    cks_zip_entry key = {.name = name};
    return bsearch(&key, z->entries, z->count, sizeof *z->entries, cmp_entry);
}

int cks_torchzip_check_crc(const cks_torchzip *z, const cks_zip_entry *e)
{
    if (cks_zip_crc32(e->data, e->size) != e->crc)
        return cks_error_set(CKS_EFORMAT, "%s: entry '%s/%s' fails its CRC-32 check (damaged)",
                             z->map->display, z->prefix,
                             cks_printable((char[160]){0}, 160, e->name, strlen(e->name)));
    return 0;
}

/* A small record (version, byteorder): bounded and CRC-checked before it is read. */
static int small_record(const cks_torchzip *z, const cks_zip_entry *e)
{
    if (e->size > SMALL_RECORD_MAX)
        return cks_error_set(CKS_EFORMAT, "%s: record '%s' has %llu bytes (at most %u)",
                             z->map->display, e->name, (unsigned long long)e->size,
                             SMALL_RECORD_MAX);
    return cks_torchzip_check_crc(z, e);
}

/* torch's own records: data.pkl, version, byteorder. */
static int check_torch_records(const cks_torchzip *z)
{
    const char *disp = z->map->display;
    const cks_zip_entry *v = cks_torchzip_find(z, "version"), *b;
    char shown[32];
    int err;
    if (!cks_torchzip_find(z, "data.pkl"))
        return cks_error_set(CKS_EFORMAT, "%s: no '%s/data.pkl' (not a torch.save checkpoint)",
                             disp, z->prefix);
    if (!v)
        v = cks_torchzip_find(z, ".data/version");
    if (!v)
        return cks_error_set(CKS_EFORMAT, "%s: no '%s/version' record", disp, z->prefix);
    if ((err = small_record(z, v)) != 0)
        return err;
    uint64_t ver = 0;
    size_t k = 0;
    while (k < v->size && v->data[k] >= '0' && v->data[k] <= '9' && ver <= CKS_TORCH_MAX_VERSION)
        ver = ver * 10 + (uint64_t)(v->data[k++] - '0');
    if (k < v->size && v->data[k] == '\n')
        k++;
    if (k == 0 || k != v->size || ver < 1 || ver > CKS_TORCH_MAX_VERSION)
        return cks_error_set(
            CKS_EUNSUPPORTED, "%s: archive format version '%s' (readable: 1..%d)", disp,
            cks_printable(shown, sizeof shown, v->data,
                          v->size && v->data[v->size - 1] == '\n' ? v->size - 1 : v->size),
            CKS_TORCH_MAX_VERSION);
    if ((b = cks_torchzip_find(z, "byteorder")) != NULL) {
        if ((err = small_record(z, b)) != 0)
            return err;
        if (b->size != 6 || memcmp(b->data, "little", 6) != 0)
            return cks_error_set(CKS_EUNSUPPORTED,
                                 "%s: byteorder is '%s'; only little-endian checkpoints are "
                                 "readable",
                                 disp, cks_printable(shown, sizeof shown, b->data, b->size));
    }
    return 0;
}

void cks_torchzip_release(cks_torchzip *z)
{
    if (!z)
        return;
    free(z->prefix);
    free(z->entries);
    free(z->names);
    memset(z, 0, sizeof *z);
}

int cks_torchzip_open(const cks_map *m, cks_torchzip *out)
{
    cks_torchzip z = {.map = m};
    zrec *recs = NULL;
    zend e = {0};
    int err;
    if ((err = find_end(m, &e)) != 0)
        return err;
    if (e.cd_offset > e.cd_limit || e.cd_limit - e.cd_offset < e.cd_size)
        return cks_error_set(CKS_EFORMAT,
                             "%s: central directory (%llu bytes at %llu) runs past its end "
                             "record at %llu",
                             m->display, (unsigned long long)e.cd_size,
                             (unsigned long long)e.cd_offset, (unsigned long long)e.cd_limit);
    if (e.entries > CKS_ZIP_MAX_ENTRIES)
        return cks_error_set(CKS_ELIMIT, "%s: %llu zip entries (limit %d)", m->display,
                             (unsigned long long)e.entries, CKS_ZIP_MAX_ENTRIES);
    if (e.entries > e.cd_size / CENTRAL_LEN)
        return cks_error_set(
            CKS_EFORMAT, "%s: %llu zip entries cannot fit a central directory of %llu bytes",
            m->display, (unsigned long long)e.entries, (unsigned long long)e.cd_size);
    if (e.entries == 0)
        return cks_error_set(CKS_EFORMAT, "%s: an empty zip archive", m->display);
    if (!(recs = calloc(e.entries, sizeof *recs)))
        return cks_error_set(CKS_ENOMEM, "out of memory");
    if ((err = read_records(m, &e, recs)) != 0 ||
        (err = build_entries(m, recs, e.entries, &z)) != 0 || (err = check_torch_records(&z)) != 0)
        goto done;
    *out = z;
    z = (cks_torchzip){0};
done:
    free(recs);
    cks_torchzip_release(&z);
    return err;
}
