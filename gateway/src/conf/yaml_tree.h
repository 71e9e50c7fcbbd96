/*
 * Loading a YAML file into a tree of struct sl_node (sluice/conf.h), with
 * positions, and ${VAR} expansion from the environment.
 */
#ifndef SL_YAML_TREE_H
#define SL_YAML_TREE_H

#include "sluice/conf.h"

struct sl_conf_ctx;

/*
 * Parse text (len bytes, the file's content) into a tree allocated in the
 * ctx's arena. Syntax errors, duplicate keys and unset environment variables
 * are reported through ctx. Returns the root node, or NULL when the document
 * could not be parsed at all (an empty file gives an empty map).
 */
const struct sl_node *sl__yaml_load(struct sl_conf_ctx *ctx, const char *text, size_t len);

/*
 * Expand ${NAME} and ${NAME:-default} in s. Returns an arena copy, or NULL and
 * sets *missing (borrowed from s, NUL-terminated copy in the arena) to the
 * first name that is not set. "$$" stands for a literal "$".
 */
char *sl__env_expand(struct sl_arena *a, const char *s, size_t len, const char **missing);

#endif
