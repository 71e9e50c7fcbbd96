/*
 * sluice-keys - every key path the config parser accepted while reading
 * some files (not installed: the documentation test's tool).
 *
 *   sluice-keys FILE...
 *
 * Each file is loaded as "sluice -t" loads it, by the same parser and
 * plugins, with sl_conf_keys() tracing (conf/key_trace.h): for each map
 * it checked, every key it allows is printed, once, as a path such as
 * "listen[].tls.min_version", "upstreams.*.balance" or
 * "routes[].plugins.rate_limit.burst". The list is the parser's own, so a
 * key added to a keys[] array shows up without anything else to update; a
 * map is listed only if some file sets it, so the files must set every
 * section (the test checks that each key printed is set in one of them).
 * Exit 0, or 1 if a file has errors (its report goes to stderr).
 */
#include <stdio.h>
#include <stdlib.h>

#include "conf/key_trace.h"
#include "config/gen.h"
#include "config/plugins.h"

int main(int argc, char **argv)
{
    int rc = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: sluice-keys FILE...\n");
        return 2;
    }
    sl__plugins_init();
    for (int i = 1; i < argc; i++) {
        char *report = NULL;
        int errors = 0;
        struct sl_gen *g;

        sl__key_trace_on = true;
        g = sl__gen_load(argv[i], 0, &report, &errors);
        sl__key_trace_on = false;
        if (report != NULL)
            fputs(report, stderr);
        free(report);
        if (g == NULL) {
            fprintf(stderr, "%s: %d error%s\n", argv[i], errors, errors == 1 ? "" : "s");
            rc = 1;
        }
        sl__key_trace_print(stdout);
        sl__key_trace_clear();
        sl__gen_unref(g);
    }
    return rc;
}
