/*
 * Tunnels after 101 Switching Protocols: the client's bytes are copied to
 * the upstream until both sides have ended (the upstream's are copied to
 * the client as upstream_response.c reads them).
 */
#include "http/tunnel.h"

#include "config/config.h"
#include "http/conn.h"
#include "config/gen.h"
#include "http/proxy.h"
#include "http/req.h"

void sl__tunnel_start(struct sl_req *req)
{
    struct sl_upconn *uc = req->up;
    struct sl_conn *c = req->conn;

    sl__upconn_enter(uc, SL_UP_TUNNEL);
    sl__conn_enter(c, SL_CS_TUNNEL);
    sl__conn_nodelay(c);
    req->action = "tunnelling";
    sl__conn_set_deadline(c, 0);
    /* Bytes that came after the heads belong to the tunnel. */
    if (uc->rpos < uc->rbuf->len) {
        sl__out_slice(&c->out, uc->rbuf, uc->rbuf->data + uc->rpos, uc->rbuf->len - uc->rpos);
        uc->rpos = uc->rbuf->len;
    }
    if (sl__out_flush(&c->out) != 0) {
        sl__conn_abort(c);
        return;
    }
    sl__upconn_set_deadline(uc, req->upstream->conf->read_ms);
    sl__tunnel_client_data(c);
    sl__conn_update_reading(c);
}

void sl__tunnel_client_data(struct sl_conn *c)
{
    struct sl_req *req = &c->rx->req;
    struct sl_upconn *uc = req->up;

    if (uc == NULL || c->rbuf == NULL)
        return;
    if (c->rpos < c->rbuf->len) {
        sl__out_slice(&uc->out, c->rbuf, c->rbuf->data + c->rpos, c->rbuf->len - c->rpos);
        c->rpos = c->rbuf->len;
    }
    if (sl__out_flush(&uc->out) != 0) {
        sl__conn_abort(c);
        return;
    }
    if (sl__out_queued(&uc->out) > SL_OUT_HIGH) {
        c->upstream_bp = true;
        sl__conn_update_reading(c);
    }
    sl__upconn_set_deadline(uc, req->upstream->conf->read_ms);
}

void sl__tunnel_client_eof(struct sl_conn *c)
{
    struct sl_req *req = &c->rx->req;
    struct sl_upconn *uc = req->up;

    if (uc == NULL) {
        sl__conn_abort(c);
        return;
    }
    if (!uc->shut) {
        uc->shut = true;
        uc->shutdown_req.data = uc;
        if (uv_shutdown(&uc->shutdown_req, (uv_stream_t *)&uc->tcp, NULL) != 0) {
            sl__conn_abort(c);
            return;
        }
    }
    sl__tunnel_maybe_end(req);
}

void sl__tunnel_maybe_end(struct sl_req *req)
{
    struct sl_conn *c = req->conn;
    struct sl_upconn *uc = req->up;

    if (uc == NULL || !c->eof || !uc->eof || c->out.pending > 0 || uc->out.pending > 0)
        return;
    sl__conn_request_done(c);
}
