/*
 * Dry-run reloads (POST /reload?dry_run=1): what a reload would change,
 * applying nothing. Main thread.
 */
#ifndef SL_SERVER_DRY_RUN_H
#define SL_SERVER_DRY_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "base/sbuf.h"

/*
 * Read and check a configuration as a reload would (the same errors, with
 * the same file:line:col), without binding or applying anything, and
 * compare it with the running one. text NULL: the running instance's own
 * file as it now is on disk; otherwise text (len bytes, borrowed), whose
 * errors name it name (NULL: "(request body)"). n_workers sizes it as the
 * running workers are.
 *
 * Writes the JSON answer to out and returns its HTTP status: 200 with
 * {"dry_run": true, "generation", "file", "changes": [...], "warnings"},
 * or 400 with {"error": "invalid_config", "message": the report, ...}.
 */
int sl__dry_run(const char *text, size_t len, const char *name, uint32_t n_workers,
                struct sl_sbuf *out);

#endif
