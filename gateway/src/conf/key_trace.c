/*
 * Tracing the keys the config parsers accept (key_trace.h).
 */
#include "conf/key_trace.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"

bool sl__key_trace_on;

/* One allowed key at one map: the map (to tell later whether one of its
 * keys is a fixed name or one the user chose) and the key's full path. */
struct allowed {
    const struct sl_node *map;
    const char *key;
    char *path;
};

static struct allowed *seen;
static size_t n_seen, cap_seen;

/* Is key one of the keys traced at map? Then it is a name the parser
 * knows; otherwise the user chose it (an upstream's name) and it is "*". */
static bool known(const struct sl_node *map, const char *key)
{
    for (size_t i = 0; i < n_seen; i++)
        if (seen[i].map == map && strcmp(seen[i].key, key) == 0)
            return true;
    return false;
}

/* Append node's place to buf (len so far), root first. */
static size_t place(const struct sl_node *n, char *buf, size_t size, size_t len)
{
    const char *part;

    if (n == NULL || n->parent == NULL)
        return len;
    len = place(n->parent, buf, size, len);
    if (n->parent->type == SL_NODE_SEQ) {
        part = "[]";
    } else {
        part = n->key != NULL && known(n->parent, n->key) ? n->key : "*";
        if (len > 0 && len < size)
            buf[len++] = '.';
    }
    for (; *part != '\0' && len + 1 < size; part++)
        buf[len++] = *part;
    buf[len < size ? len : size - 1] = '\0';
    return len;
}

void sl__key_trace_key(const struct sl_node *map, const char *key)
{
    char path[1024] = "";
    size_t len;

    if (!sl__key_trace_on)
        return;
    len = place(map, path, sizeof(path), 0);
    if (len + 1 < sizeof(path))
        snprintf(path + len, sizeof(path) - len, "%s%s", len ? "." : "", key);
    if (n_seen == cap_seen) {
        cap_seen = cap_seen ? 2 * cap_seen : 256;
        seen = sl__xrealloc(seen, cap_seen * sizeof(*seen));
    }
    seen[n_seen].map = map;
    seen[n_seen].key = key;
    seen[n_seen].path = sl__xstrdup(path);
    n_seen++;
}

void sl__key_trace_map(const struct sl_node *map, bool is_root, const char *const *allowed)
{
    if (!sl__key_trace_on || (map->parent == NULL && !is_root))
        return;
    for (; *allowed != NULL; allowed++)
        sl__key_trace_key(map, *allowed);
}

static int by_text(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void sl__key_trace_print(FILE *f)
{
    char **paths = sl__xmalloc((n_seen + 1) * sizeof(*paths));

    for (size_t i = 0; i < n_seen; i++)
        paths[i] = seen[i].path;
    qsort(paths, n_seen, sizeof(*paths), by_text);
    for (size_t i = 0; i < n_seen; i++)
        if (i == 0 || strcmp(paths[i], paths[i - 1]) != 0)
            fprintf(f, "%s\n", paths[i]);
    free(paths);
}

void sl__key_trace_clear(void)
{
    for (size_t i = 0; i < n_seen; i++)
        free(seen[i].path);
    free(seen);
    seen = NULL;
    n_seen = cap_seen = 0;
}
