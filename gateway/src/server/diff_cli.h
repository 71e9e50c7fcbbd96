/*
 * sluice -t --diff -c FILE [--admin HOST:PORT] [--token-file FILE]: what a
 * reload of FILE would change in the running instance, asked of its admin
 * API (POST /reload?dry_run=1), applying nothing.
 */
#ifndef SL_SERVER_DIFF_CLI_H
#define SL_SERVER_DIFF_CLI_H

/*
 * g is file as "sluice -t" loaded and reported it (main.c); this takes it
 * over. Send the file's text to the instance's admin API for a dry run and
 * print one line per change on stdout, then a summary line.
 *
 * admin (NULL: file's admin.address) is the running instance's admin
 * address; its bearer token is token, else the first line of the file
 * token_file, else file's admin.token (${VAR} expanded), else the
 * environment's SLUICE_ADMIN_TOKEN (any may be NULL). Returns the exit status: 0 the file is valid
 * (with changes or without), 1 it has errors (locally or as the instance reads it), 2 the instance
 * could not be asked (unreachable, token refused, no dry runs). Blocking; runs before any loop
 * exists.
 */
struct sl_gen;
int sl__diff_cli(struct sl_gen *g, const char *file, const char *admin, const char *token,
                 const char *token_file);

#endif
