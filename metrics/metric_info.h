/* Descriptions of the named values a metric family produces (norms, drift, spectral):
 * the run file stores one dataset per name, with the description and unit as attributes,
 * so every family lists its names once, in the order its values come out. */
#ifndef CKS_METRIC_INFO_H
#define CKS_METRIC_INFO_H

#include <stddef.h>

typedef struct {
    const char *name;        /* dataset name in the run file, e.g. "rel_fro" */
    const char *description; /* one line for humans (HDF5 attr "description") */
    const char *unit;        /* HDF5 attr "unit"; NULL when none applies */
} cks_metric_info;

#endif
