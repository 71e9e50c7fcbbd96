/*
 * The built-in plugins. The order of this table is the order in which their
 * handlers run within each phase, as documented in sluice.yaml(5):
 *
 *   ip_restrict, request_id, cors, jwt | oauth_introspection, rate_limit,
 *   concurrency
 *
 * A plugin left out of the build (meson -Dplugins=...) is simply not listed,
 * and a config that names it gets "unknown plugin".
 */
#include "config/plugins.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef SL_PLUGIN_REQUEST_ID
extern const struct sl_plugin sl_plugin_request_id;
#endif
#ifdef SL_PLUGIN_RATE_LIMIT
extern const struct sl_plugin sl_plugin_rate_limit;
#endif
#ifdef SL_PLUGIN_CONCURRENCY
extern const struct sl_plugin sl_plugin_concurrency;
#endif

const struct sl_plugin *const sl__plugins[] = {
#ifdef SL_PLUGIN_REQUEST_ID
    &sl_plugin_request_id,
#endif
#ifdef SL_PLUGIN_RATE_LIMIT
    &sl_plugin_rate_limit,
#endif
#ifdef SL_PLUGIN_CONCURRENCY
    &sl_plugin_concurrency,
#endif
    NULL,
};

const size_t sl__n_plugins = sizeof(sl__plugins) / sizeof(sl__plugins[0]) - 1;

const struct sl_plugin *sl__plugin_find(const char *name, size_t *id)
{
    for (size_t i = 0; i < sl__n_plugins; i++) {
        if (strcmp(sl__plugins[i]->name, name) == 0) {
            if (id != NULL)
                *id = i;
            return sl__plugins[i];
        }
    }
    return NULL;
}

void sl__plugins_init(void)
{
    for (size_t i = 0; i < sl__n_plugins; i++) {
        const struct sl_plugin *p = sl__plugins[i];

        if (p->abi != SL_PLUGIN_ABI || p->id == NULL) {
            fprintf(stderr,
                    "sluice: plugin %s was built for plugin ABI %d, this gateway has %d%s\n",
                    p->name, p->abi, SL_PLUGIN_ABI, p->id == NULL ? " (and it has no id)" : "");
            exit(1);
        }
        *p->id = (unsigned)i;
    }
}
