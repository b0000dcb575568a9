/* Test fixtures for torch.save checkpoints built in C: pickle opcodes (the sequence
 * torch.save writes for a state dict, see tools/make_torch_fixtures.py's assembler,
 * which is checked there against torch.load), and torch archives in the layout torch's
 * miniz writer uses (data descriptors, 64-byte aligned data behind an "FB" extra field,
 * ZIP64 fields exactly where miniz puts them, always a ZIP64 end record). Archives can
 * be written to a file with holes, so > 4 GiB ZIP64 cases cost no disk. */
#ifndef CKS_TEST_TORCHFX_H
#define CKS_TEST_TORCHFX_H

#include <stddef.h>
#include <stdint.h>

/* A growable byte buffer; aborts on allocation failure (test code). cks_fx_put with
 * data NULL appends n zero bytes. */
typedef struct {
    unsigned char *p;
    size_t n, cap;
} cks_fx_buf;

void cks_fx_put(cks_fx_buf *b, const void *data, size_t n);
void cks_fx_putc(cks_fx_buf *b, int c);
void cks_fx_buf_free(cks_fx_buf *b);

/* Pickle opcodes. */
void cks_fx_pk_str(cks_fx_buf *b, const char *s); /* BINUNICODE */
void cks_fx_pk_int(cks_fx_buf *b, int64_t i);     /* BININT1/2, BININT, LONG1 */
void cks_fx_pk_global(cks_fx_buf *b, const char *mod, const char *name); /* GLOBAL */
void cks_fx_pk_odict(cks_fx_buf *b);                                     /* OrderedDict() */
/* torch._utils._rebuild_tensor_v2(('storage', torch.<cls>, key, 'cpu', numel) as a
 * persistent id, offset, size, stride, False, OrderedDict()) */
void cks_fx_pk_tensor(cks_fx_buf *b, const char *key, const char *cls, int64_t numel,
                      int64_t offset, int ndim, const int64_t *size, const int64_t *stride);

/* One archive entry. data NULL means size zero bytes left as a hole when writing to a
 * file (their CRC is written as 0: ckptscope does not check tensor CRCs). */
typedef struct {
    const char *name; /* full name, "<archive>/..." */
    const void *data;
    uint64_t size;
} cks_fx_zip_entry;

/* Writes entries as torch's miniz writer would; 0 or -1 (message on stderr). */
int cks_fx_torchzip_file(const char *path, const cks_fx_zip_entry *e, int n);
/* The same in memory (holes become zeros). Free the result. */
unsigned char *cks_fx_torchzip_mem(const cks_fx_zip_entry *e, int n, size_t *size);

#endif
