/* The one JSON reader wrapper (jansson). Parses untrusted text with a size limit and
 * typed, checked getters that set a message naming the file and the key. */
#ifndef CKS_JSON_H
#define CKS_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Parses len bytes (need not be NUL-terminated). On failure the message names display,
 * the line and column. When want_object is 1 the top level must be an object.
 * *out is a new reference (json_decref it). */
int cks_json_parse(const char *text, size_t len, const char *display, int want_object,
                   json_t **out);

/* Typed getters on an object. Missing key: CKS_ENOTFOUND without a message when
 * optional (dflt written), with a message otherwise. Wrong type or out of [lo, hi]:
 * CKS_EFORMAT naming display and key. Integers accept only JSON integers (or reals with
 * an exact integer value). */
int cks_json_get_int(const json_t *obj, const char *key, int64_t lo, int64_t hi, int optional,
                     int64_t dflt, const char *display, int64_t *out);
int cks_json_get_real(const json_t *obj, const char *key, double lo, double hi, int optional,
                      double dflt, const char *display, double *out);
int cks_json_get_bool(const json_t *obj, const char *key, int optional, int dflt,
                      const char *display, int *out);
/* Borrowed string, valid while obj lives. */
int cks_json_get_string(const json_t *obj, const char *key, int optional, const char *display,
                        const char **out);

/* A number for output: json_real(v), or json_null() when v is NaN or infinite. */
json_t *cks_json_number(double v);

#endif
