/* Relative paths named by files inside a checkpoint (index json shard names, ...). */
#ifndef CKS_PATH_H
#define CKS_PATH_H

/* 0 when p is a safe relative path: not empty, not absolute, no "..", "." or empty
 * components, no backslash or control characters; CKS_EFORMAT otherwise (no message). */
int cks_path_check_relative(const char *p);

/* 1 when child (a resolved absolute path) lies inside dir (resolved absolute). */
int cks_path_is_inside(const char *dir, const char *child);

#endif
