/*
 * sluice-origin's routes that report what the client sent or what the
 * origin has seen: /echo, /headers, /sink and /stats.
 */
#ifndef ORIGIN_ECHO_H
#define ORIGIN_ECHO_H

struct buf;
struct conn;

/* The head of an /echo request on c is parsed: send the response head now;
 * the body follows piece by piece from on_body, and finish() ends it. */
void echo_start(struct conn *c);

/* Append to j the JSON body of /stats, /sink or /headers for the request
 * just completed on c (it reads c's head and counts); other routes append
 * nothing.  j's memory is the caller's to own. */
void echo_report(struct conn *c, struct buf *j);

#endif
