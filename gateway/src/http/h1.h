/*
 * HTTP/1.1 as a request's downstream: the one implementation of
 * http/downstream.h today, on the client connection of http/conn.c.
 */
#ifndef SL_HTTP_H1_H
#define SL_HTTP_H1_H

#include "http/downstream.h"

extern const struct sl_downstream sl__h1_downstream;

#endif
