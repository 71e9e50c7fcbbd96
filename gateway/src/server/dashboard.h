/*
 * The admin dashboard: GET / on the admin listener answers one self-contained
 * page (dashboard.html: HTML, inline CSS and JavaScript, compiled into the
 * binary by scripts/embed). The page holds no data, so it is served without
 * the admin token; everything it shows it fetches from the admin API itself
 * (/status, /routes, /metrics, /upstreams), each request carrying the token
 * the user entered once.
 */
#ifndef SL_DASHBOARD_H
#define SL_DASHBOARD_H

#include <stdbool.h>
#include <stddef.h>

struct sl_sbuf;

/* Whether path (len bytes, the query already cut off) is the page's: "/". */
bool sl__dashboard_is_page(const char *path, size_t len);

/*
 * Append to out a whole HTTP/1.1 response carrying the page: 200, text/html,
 * a Content-Security-Policy that allows only the page's own inline script
 * and style and requests to the admin listener, Cache-Control: no-cache,
 * Connection: close. head_only leaves the body out (HEAD). token_required
 * tells the page to ask for the admin token before its first data request.
 */
void sl__dashboard_response(struct sl_sbuf *out, bool head_only, bool token_required);

#endif
