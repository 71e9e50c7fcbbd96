/*
 * ip_restrict plugin: let a route's clients through by address. The
 * address is the one per-client limits use (sl_req_real_ip(): the peer, or
 * behind trusted_proxies the right-most untrusted X-Forwarded-For hop).
 * deny is checked first and always wins; then, when there is an allow
 * list, the address must be in it; an address that is not an IP address
 * never passes. A refusal is a 403 "forbidden" made
 * before anything goes upstream. The first handler of the ACCESS phase.
 */
#include "ip_restrict.h"

static const char *const decisions_values[] = {"allowed", "denied", NULL};
static const struct sl_counter decisions = {
    .name = "sluice_ip_restrict_decisions_total",
    .help = "Client address checks of ip_restrict, by route.",
    .label = "decision",
    .values = decisions_values,
};

bool sl__ipr_passes(const struct ipr_conf *c, const char *ip)
{
    struct ipr_cidr a;

    /* Fail closed: an address no rule can be checked against might be one
     * that deny: [0.0.0.0/0, "::/0"] was written to keep out. */
    if (!sl__ipr_addr_parse(ip, &a))
        return false;
    if (sl__ipr_set_has(&c->deny, &a))
        return false;
    return !c->has_allow || sl__ipr_set_has(&c->allow, &a);
}

static enum sl_status on_access(struct sl_req *req, void *conf)
{
    if (sl__ipr_passes(conf, sl_req_real_ip(req))) {
        sl_req_count(req, &decisions, "allowed");
        return SL_NEXT;
    }
    sl_req_count(req, &decisions, "denied");
    sl_req_log_field(req, "ip_restrict", "denied");
    if (sl_req_respond(req, 403, "forbidden", "your address may not use this route") != 0)
        return SL_ERROR;
    return SL_DONE;
}

static const struct sl_counter *const counters[] = {&decisions, NULL};

static unsigned id;

const struct sl_plugin sl_plugin_ip_restrict = {
    .abi = SL_PLUGIN_ABI,
    .name = "ip_restrict",
    .id = &id,
    .conf_parse = sl__ip_restrict_conf_parse,
    .access = on_access,
    .counters = counters,
};
