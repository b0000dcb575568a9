/* jansson wrapper: untrusted JSON in, checked values out (see json.h). */
#include "json.h"
#include "error.h"

#include <math.h>

int cks_json_parse(const char *text, size_t len, const char *display, int want_object, json_t **out)
{
    json_error_t jerr;
    /* JSON_REJECT_DUPLICATES: a header naming a tensor twice must not silently pick one. */
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!j)
        return cks_error_set(CKS_EFORMAT, "%s: not valid JSON (line %d, column %d: %s)", display,
                             jerr.line, jerr.column, jerr.text);
    if (want_object && !json_is_object(j)) {
        json_decref(j);
        return cks_error_set(CKS_EFORMAT, "%s: JSON top level is not an object", display);
    }
    *out = j;
    return 0;
}

static int missing(const char *key, int optional, const char *display)
{
    if (optional)
        return CKS_ENOTFOUND;
    return cks_error_set(CKS_ENOTFOUND, "%s: missing key \"%s\"", display, key);
}

int cks_json_get_int(const json_t *obj, const char *key, int64_t lo, int64_t hi, int optional,
                     int64_t dflt, const char *display, int64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return missing(key, optional, display);
    }
    int64_t x;
    if (json_is_integer(v)) {
        x = (int64_t)json_integer_value(v);
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!(d >= -9.2e18 && d <= 9.2e18) || d != floor(d))
            return cks_error_set(CKS_EFORMAT, "%s: \"%s\" is not an integer", display, key);
        x = (int64_t)d;
    } else {
        return cks_error_set(CKS_EFORMAT, "%s: \"%s\" is not a number", display, key);
    }
    if (x < lo || x > hi)
        return cks_error_set(CKS_EFORMAT, "%s: \"%s\" = %lld is outside [%lld, %lld]", display, key,
                             (long long)x, (long long)lo, (long long)hi);
    *out = x;
    return 0;
}

int cks_json_get_real(const json_t *obj, const char *key, double lo, double hi, int optional,
                      double dflt, const char *display, double *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return missing(key, optional, display);
    }
    if (!json_is_number(v))
        return cks_error_set(CKS_EFORMAT, "%s: \"%s\" is not a number", display, key);
    double x = json_number_value(v);
    if (!(x >= lo && x <= hi))
        return cks_error_set(CKS_EFORMAT, "%s: \"%s\" = %g is outside [%g, %g]", display, key, x,
                             lo, hi);
    *out = x;
    return 0;
}

int cks_json_get_bool(const json_t *obj, const char *key, int optional, int dflt,
                      const char *display, int *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return missing(key, optional, display);
    }
    if (!json_is_boolean(v))
        return cks_error_set(CKS_EFORMAT, "%s: \"%s\" is not true or false", display, key);
    *out = json_is_true(v);
    return 0;
}

int cks_json_get_string(const json_t *obj, const char *key, int optional, const char *display,
                        const char **out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = NULL;
        return missing(key, optional, display);
    }
    if (!json_is_string(v))
        return cks_error_set(CKS_EFORMAT, "%s: \"%s\" is not a string", display, key);
    *out = json_string_value(v);
    return 0;
}

json_t *cks_json_number(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}
