/*
 * The built-in plugins. The order of this table is the order in which their
 * handlers run within each phase, as documented in sluice.yaml(5):
 *
 *   ip_restrict, request_id, cors, api_key, jwt | oauth_introspection,
 *   rate_limit, concurrency, split, headers, compress
 *
 * It is generated (config/plugin_table.h) from plugin_order in the top-level
 * meson.build, for the plugins meson -Dplugins=... compiles in; a config
 * that names one left out gets "unknown plugin".
 */
#include "config/plugins.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SL_PLUGIN(name) extern const struct sl_plugin sl_plugin_##name;
#include "config/plugin_table.h"
#undef SL_PLUGIN

#define SL_PLUGIN(name) &sl_plugin_##name,
const struct sl_plugin *const sl__plugins[] = {
#include "config/plugin_table.h"
    NULL,
};
#undef SL_PLUGIN

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
