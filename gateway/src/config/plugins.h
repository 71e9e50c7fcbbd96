/*
 * The built-in plugins and the phase runner.
 */
#ifndef SL_PLUGINS_H
#define SL_PLUGINS_H

#include <stddef.h>

#include "sluice/plugin.h"

/*
 * Every plugin compiled in, in the fixed order their handlers run within a
 * phase (see plugins.c). Their index in this table is their id.
 */
extern const struct sl_plugin *const sl__plugins[];
extern const size_t sl__n_plugins;

/*
 * Check every plugin's ABI version (exit 1 with a message on a mismatch)
 * and give each its id. Main thread, once, before any config is read.
 */
void sl__plugins_init(void);

/* The plugin called name, or NULL. */
const struct sl_plugin *sl__plugin_find(const char *name, size_t *id);

#endif
