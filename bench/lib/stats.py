"""Medians per target, and ratios computed pair by pair within each round.

A ratio such as sluice/nginx is taken in every round from the two runs of
that round (which ran seconds apart, under the same machine noise), and the
report gives the median of those per-round ratios with their min and max:
the spread says how far one run can be trusted.
"""

import statistics

# What each kind of scenario is judged by first (the main table), and the
# metrics whose ratios are computed.
HEADLINE = {"wrk": ["rate", "cpu_us"], "handshake": ["cpu_us"], "idle": ["kib_per_conn"],
            "paced": ["p99", "p50"]}
RATIO_METRICS = {"wrk": ["rate", "cpu_us", "p99"], "handshake": ["cpu_us", "rate"],
                 "idle": ["kib_per_conn"], "paced": ["p50", "p99", "p99.9", "cpu_us"]}
LABELS = {"rate": "req/s", "cpu_us": "CPU µs/req", "p50": "p50 µs", "p99": "p99 µs",
          "p99.9": "p99.9 µs", "kib_per_conn": "KiB/conn"}
HIGHER_IS_BETTER = {"rate"}


def label(kind, metric):
    """How a metric is called in tables and logs (per handshake for s_time)."""
    text = LABELS.get(metric, metric)
    return text.replace("req", "hs") if kind == "handshake" else text


def value(rec, metric):
    """A metric of one run record (latencies live under rec['lat'])."""
    if metric == "cpu_us":
        if rec.get("cpu_user_us") is None:
            return None
        return rec["cpu_user_us"] + rec["cpu_sys_us"]
    if metric in rec:
        return rec[metric]
    if metric.endswith("_mib") and metric[:-4] + "_kib" in rec:
        return rec[metric[:-4] + "_kib"] / 1024
    return rec.get("lat", {}).get(metric)


def median_of(runs, metric):
    vals = [v for v in (value(r, metric) for r in runs) if v is not None]
    return statistics.median(vals) if vals else None


def spread(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals),
            "rounds": len(vals)}


def round_ratios(a_runs, b_runs, metric):
    """a/b of metric for each round both have, then median, min, max."""
    by_round = {r["round"]: r for r in b_runs}
    vals = []
    for ra in a_runs:
        rb = by_round.get(ra["round"])
        if rb is None:
            continue
        va, vb = value(ra, metric), value(rb, metric)
        if va is not None and vb:
            vals.append(va / vb)
    return spread(vals)


def pairs_for(names, variants):
    """(numerator, denominator) pairs: sluice against each peer, or each
    sluice variant against the plain route."""
    if variants:
        return [(n, names[0]) for n in names[1:]]
    if "sluice" not in names:
        return []
    return [("sluice", n) for n in names if n != "sluice"]


def summarize(sc, runs, extras):
    """The scenario's result: per target medians (and the extras measured
    once: syscalls, peak RSS), and the per-round ratios of every pair."""
    names = list(runs)
    metrics = ["rate", "cpu_us", "cpu_user_us", "cpu_sys_us", "p50", "p75", "p90", "p99",
               "p99.9", "max", "mean", "kib_per_conn", "send_lag_p99", "rate_target", "ops",
               "still_open", "rss_before_mib", "rss_after_mib", "hwm_held_mib"]
    targets = {}
    for n, rs in runs.items():
        t = {"median": {m: median_of(rs, m) for m in metrics if median_of(rs, m) is not None},
             "errors": sum(r.get("errors", 0) for r in rs), "runs": rs}
        t.update(extras.get(n, {}))
        if sc.kind == "paced" and t["median"].get("p50") and t["median"].get("rate_target"):
            t["saturated"] = t["median"]["p50"] >= 0.7 * sc.conns / t["median"]["rate_target"] * 1e6
        targets[n] = t
    ratios = []
    for a, b in pairs_for(names, sc.variants):
        for m in RATIO_METRICS[sc.kind]:
            s = round_ratios(runs[a], runs[b], m)
            if s:
                ratios.append({"pair": f"{a}/{b}", "metric": m, **s})
    return {"scenario": sc.name, "kind": sc.kind, "what": sc.what, "variants": sc.variants,
            "conns": sc.conns, "targets": targets, "ratios": ratios}
