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
    int guard; /* slot in the SIGBUS guard, -1 when unguarded */
} cks_map;

/* SIGBUS guard. A mapped file that shrinks (or hits an I/O error) under us raises SIGBUS
 * on access. With the guard installed, a fault inside a mapped file's range is absorbed:
 * a zero page replaces the missing one, the map is flagged, and cks_map_check() reports
 * it, so the caller discards what it computed from that map and goes on. A SIGBUS
 * anywhere else keeps its default action. At most CKS_MAX_GUARDED_MAPS files are guarded
 * at once (more are mapped unguarded). The handler is process-wide, so the program
 * (analyze/main.c), not the library, installs it, once, before mapping anything. */
#define CKS_MAX_GUARDED_MAPS 4096
int cks_map_guard_install(void);

/* 0, or CKS_EIO naming the file when a guarded access faulted ("changed while being
 * read"). */
int cks_map_check(const cks_map *m);

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

/* Tells the kernel the range will be read soon. wait = 1: maps it into the page tables
 * now (MADV_POPULATE_READ, Linux 5.14+; nothing on older kernels), so that a pass over
 * it does not take a page fault per 4 KiB page (5x faster to copy a page-cached file
 * here); wait = 0: starts reading it from disk in the background (MADV_WILLNEED), e.g.
 * the next layer's weights while this one computes. No-op for adopted buffers. */
void cks_map_willneed(const cks_map *m, const void *p, size_t len, int wait);

/* Reads a whole small file into a NUL-terminated heap buffer; CKS_ELIMIT past limit. */
int cks_read_file(const char *path, size_t limit, char **out, size_t *len);

#endif
