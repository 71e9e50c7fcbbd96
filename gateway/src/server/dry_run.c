/*
 * Dry-run reloads: the new generation is built exactly as sl__reload()
 * builds it (the same loader, the same checks, the same report), compared
 * with the current one, and dropped. Nothing is published, no listener is
 * opened, no counter of reloads moves.
 */
#include "server/dry_run.h"

#include <stdlib.h>

#include "base/log.h"
#include "config/diff.h"
#include "config/gen.h"

static void json_report(struct sl_sbuf *b, const char *report)
{
    if (report != NULL)
        sl__sbuf_json(b, sl_str_from(report));
    else
        sl__sbuf_lit(b, "null");
}

int sl__dry_run(const char *text, size_t len, const char *name, uint32_t n_workers,
                struct sl_sbuf *out)
{
    struct sl_gen *cur = sl__gen_acquire_current(), *g;
    const char *file =
        text != NULL ? (name != NULL && name[0] ? name : "(request body)") : cur->file;
    char *report = NULL;
    int errors = 0, status = 200;
    struct sl_arena arena;
    struct sl_diff d;

    if (text != NULL)
        g = sl__gen_load_text(file, text, len, n_workers, &report, &errors);
    else
        g = sl__gen_load(file, n_workers, &report, &errors);
    if (g == NULL) {
        sl_log(SL_LOG_INFO, NULL, "dry run of %s: %d error%s, nothing applied", file, errors,
               errors == 1 ? "" : "s");
        sl__sbuf_lit(out, "{\"error\": \"invalid_config\", \"message\": ");
        json_report(out, report ? report : "the configuration could not be loaded");
        sl__sbuf_printf(out, ", \"dry_run\": true, \"errors\": %d, \"file\": ", errors);
        sl__sbuf_json(out, sl_str_from(file));
        sl__sbuf_lit(out, "}\n");
        status = 400;
        goto done;
    }
    sl_arena_init(&arena, 4096, 0);
    sl__diff_init(&d, &arena);
    sl__config_diff(&d, &(struct sl_diff_side){cur->conf}, &(struct sl_diff_side){g->conf});
    sl_log(SL_LOG_INFO, NULL,
           "dry run of %s against generation %llu: %zu change%s, nothing applied", file,
           (unsigned long long)cur->id, d.n, d.n == 1 ? "" : "s");
    sl__sbuf_printf(
        out, "{\"dry_run\": true, \"generation\": %llu, \"file\": ", (unsigned long long)cur->id);
    sl__sbuf_json(out, sl_str_from(file));
    sl__sbuf_lit(out, ", \"changes\": ");
    sl__diff_json(&d, out);
    sl__sbuf_lit(out, ", \"warnings\": ");
    json_report(out, report);
    sl__sbuf_lit(out, "}\n");
    sl_arena_destroy(&arena);
    sl__gen_unref(g);
done:
    free(report);
    sl__gen_unref(cur);
    return status;
}
