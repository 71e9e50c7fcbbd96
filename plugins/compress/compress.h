/*
 * compress plugin: shared between its phases and its config reader.
 */
#ifndef SL_PLUGIN_COMPRESS_H
#define SL_PLUGIN_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/plugin.h"

#include "negotiate.h"

struct cz_conf {
    enum cz_coding order[CZ_CODINGS]; /* the algorithms, preferred first on equal weights */
    size_t n_order;
    const char *const *types; /* media types, lower case: "text/\*", "application/json" */
    size_t n_types;
    uint64_t min_size;     /* a Content-Length below this is left alone */
    int level[CZ_CODINGS]; /* gzip 1-9, brotli quality 0-11 */
};

void *sl__compress_conf_parse(struct sl_conf_ctx *ctx, const struct sl_node *node);

extern const struct sl_plugin sl_plugin_compress;

#endif
