/* safetensors (https://huggingface.co/docs/safetensors).
 *
 * Byte layout:
 *   [0, 8)        N: header length, unsigned 64-bit little-endian
 *   [8, 8+N)      header: a UTF-8 JSON object (may be padded with spaces)
 *                   "__metadata__": {string: string}        (optional)
 *                   "<tensor name>": {"dtype": "F32"|"F16"|"BF16"|"F64"|"I8"|...,
 *                                     "shape": [d0, d1, ...],
 *                                     "data_offsets": [begin, end]}
 *   [8+N, size)   data; offsets are relative to 8+N, end exclusive
 * Checks made: N <= CKS_MAX_ST_HEADER and 8+N <= file size; the header is a JSON object
 * with no duplicate names; dtype known; shape a list of at most CKS_MAX_DIMS
 * non-negative integers; begin <= end <= data size; end - begin equals the shape's
 * element count times the dtype size (overflow-checked); no two tensors' ranges overlap;
 * at most CKS_MAX_TENSORS tensors. */
#ifndef CKS_SAFETENSORS_H
#define CKS_SAFETENSORS_H

#include "map.h"
#include "tensor.h"

#define CKS_MAX_ST_HEADER (100u << 20) /* the reference implementation's limit */
#define CKS_MAX_TENSORS   (1 << 20)

/* Appends the tensors of the mapped file m to out, each with ->file = file. Views
 * borrow from m. On error nothing is appended. */
int cks_safetensors_parse(const cks_map *m, int file, cks_tensor_list *out);

#endif
