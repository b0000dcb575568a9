/* Read-only byte regions: a memory-mapped file, or an adopted buffer (a git blob held in
 * memory). Format readers take a cks_map and produce views that borrow from it, so the
 * map must outlive every view made from it. */
#ifndef CKS_MAP_H
#define CKS_MAP_H

#include <stddef.h>

typedef struct cks_map {
    const unsigned char *data; /* NULL only when size == 0 */
    size_t size;
    const char *display; /* name used in messages ("branch:path" or a file path) */
    /* private */
    void *base;
    size_t maplen;
    void (*release)(void *ctx);
    void *ctx;
} cks_map;

/* Maps a regular file read-only. display (copied) names it in messages; NULL uses path.
 * Refuses directories and special files. */
int cks_map_file(cks_map **out, const char *path, const char *display);

/* Adopts size bytes at data; release(ctx) is called by cks_map_free (may be NULL). */
int cks_map_adopt(cks_map **out, const void *data, size_t size, void (*release)(void *ctx),
                  void *ctx, const char *display);

void cks_map_free(cks_map *m);

/* Tells the kernel the range will not be needed soon (drops page-cache pages from this
 * process's RSS for mapped files). No-op for adopted buffers. */
void cks_map_dontneed(const cks_map *m, const void *p, size_t len);

/* Reads a whole small file into a NUL-terminated heap buffer; CKS_ELIMIT past limit. */
int cks_read_file(const char *path, size_t limit, char **out, size_t *len);

#endif
