/*
 * The dashboard page, served from the bytes scripts/embed compiled in.
 */
#include "server/dashboard.h"

#include <string.h>

#include "base/sbuf.h"

/* Defined in dashboard_page.c, which the build generates from dashboard.html:
 * the page before and after its @AUTH@ marker, and the policy that allows its
 * inline script and style by their hashes. */
extern const unsigned char sl__dashboard_head[], sl__dashboard_tail[];
extern const size_t sl__dashboard_head_len, sl__dashboard_tail_len;
extern const char sl__dashboard_csp[];

bool sl__dashboard_is_page(const char *path, size_t len)
{
    return len == 1 && path[0] == '/';
}

void sl__dashboard_response(struct sl_sbuf *out, bool head_only, bool token_required)
{
    const char *auth = token_required ? "token" : "none";
    size_t len = sl__dashboard_head_len + strlen(auth) + sl__dashboard_tail_len;

    sl__sbuf_printf(out,
                    "HTTP/1.1 200 OK\r\n"
                    "Content-Type: text/html; charset=utf-8\r\n"
                    "Content-Length: %zu\r\n"
                    "Content-Security-Policy: %s\r\n"
                    "Cache-Control: no-cache\r\n"
                    "X-Content-Type-Options: nosniff\r\n"
                    "X-Frame-Options: DENY\r\n"
                    "Referrer-Policy: no-referrer\r\n"
                    "Connection: close\r\n\r\n",
                    len, sl__dashboard_csp);
    if (head_only)
        return;
    sl__sbuf_add(out, (const char *)sl__dashboard_head, sl__dashboard_head_len);
    sl__sbuf_lit(out, auth);
    sl__sbuf_add(out, (const char *)sl__dashboard_tail, sl__dashboard_tail_len);
}
