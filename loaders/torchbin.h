/* PyTorch .bin checkpoints (pytorch_model.bin and its shards) as tensor views.
 *
 * A torch.save file is a zip archive (torchzip.h) whose data.pkl is a pickled state
 * dict (pickle.h); each tensor is a window onto a storage entry "<archive>/data/<key>".
 * Views point into those entries in the mapped file: nothing is copied.
 *
 * Checks made on top of the archive's and the pickle's: data.pkl passes its CRC-32;
 * every storage key names an entry of the archive; a storage declared twice declares
 * the same type and element count; the entry holds exactly numel * element size bytes;
 * each tensor is contiguous in row-major order (dimensions of size 1 may have any
 * stride; anything else is refused as non-contiguous); its extent, (offset + numel)
 * elements of its dtype, fits in its storage entry's bytes (overflow-checked); no name
 * appears twice. Tensors may share a storage (tied weights) and may start at an offset
 * into it (views of a fused matrix). */
#ifndef CKS_TORCHBIN_H
#define CKS_TORCHBIN_H

#include "map.h"
#include "tensor.h"

/* Appends the tensors of the mapped torch.save file m to out, each with ->file = file.
 * Views borrow from m. On error nothing is appended; the message names m->display. */
int cks_torchbin_parse(const cks_map *m, int file, cks_tensor_list *out);

#endif
