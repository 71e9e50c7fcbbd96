"""The results of a run written out: results.json (everything, every run),
runs.tsv, summary.tsv and ratios.tsv, and report.md (a main table, a table
per scenario, the fairness facts and the plots)."""

import json
from pathlib import Path

from . import stats

COLUMNS = {  # kind: [(header, metric or key, unit)]
    "wrk": [("req/s", "rate", "n"), ("p50 µs", "p50", "us"), ("p99 µs", "p99", "us"),
            ("p99.9 µs", "p99.9", "us"), ("CPU user µs/req", "cpu_user_us", "us"),
            ("CPU sys µs/req", "cpu_sys_us", "us")],
    "handshake": [("handshakes/s", "rate", "n"), ("CPU user µs/hs", "cpu_user_us", "us"),
                  ("CPU sys µs/hs", "cpu_sys_us", "us")],
    "idle": [("connections", "ops", "n"), ("still open", "still_open", "n"),
             ("KiB/conn", "kib_per_conn", "f"), ("RSS before MiB", "rss_before_mib", "f"),
             ("RSS held MiB", "rss_after_mib", "f"), ("peak while held MiB", "hwm_held_mib", "f"),
             ("CPU user µs/conn", "cpu_user_us", "us"),
             ("CPU sys µs/conn", "cpu_sys_us", "us")],
    "paced": [("offered req/s", "rate_target", "n"), ("achieved req/s", "rate", "n"),
              ("p50 µs", "p50", "us"), ("p90 µs", "p90", "us"), ("p99 µs", "p99", "us"),
              ("p99.9 µs", "p99.9", "us"), ("max µs", "max", "us"),
              ("send lag p99 µs", "send_lag_p99", "us"), ("CPU user µs/req", "cpu_user_us", "us"),
              ("CPU sys µs/req", "cpu_sys_us", "us")],
}
TSV_METRICS = ["rate", "rate_target", "p50", "p75", "p90", "p99", "p99.9", "max", "mean",
               "cpu_user_us", "cpu_sys_us", "kib_per_conn", "send_lag_p99", "errors"]


def fmt(v, unit="f"):
    if v is None:
        return "–"
    if unit == "n":
        return f"{v:,.0f}"
    if unit == "us":
        return f"{v:,.1f}" if abs(v) < 100 else f"{v:,.0f}"
    return f"{v:,.2f}"


def fmt_ratio(r):
    if not r:
        return "–"
    return f"{r['median']:.2f} ({r['min']:.2f}–{r['max']:.2f})"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out) + "\n"


def ratio(res, pair, metric):
    return next((r for r in res["ratios"] if r["pair"] == pair and r["metric"] == metric), None)


def errors_cell(res):
    errs = [f"{n} {t['errors']}" for n, t in res["targets"].items() if t["errors"]]
    return ", ".join(errs) if errs else "0"


def main_table(results, peers):
    others = [p for p in peers if p != "sluice"]
    header = ["scenario", "metric"] + peers + ([f"sluice/{p}" for p in others]
                                               if "sluice" in peers else []) + ["errors"]
    rows = []
    for res in results:
        if res.get("variants") or res.get("failed"):
            continue
        for i, m in enumerate(stats.HEADLINE[res["kind"]]):
            vals = [fmt(res["targets"].get(p, {}).get("median", {}).get(m),
                        {"rate": "n", "kib_per_conn": "f"}.get(m, "us"))
                    + (" (sat.)" if res["targets"].get(p, {}).get("saturated") else "")
                    for p in peers]
            rats = [fmt_ratio(ratio(res, f"sluice/{p}", m)) for p in others] \
                if "sluice" in peers else []
            errs = errors_cell(res) if i == 0 else ""
            rows.append([res["scenario"], stats.label(res["kind"], m)] + vals + rats + [errs])
    return table(header, rows)


def variants_table(results):
    rows = []
    for res in results:
        if not res.get("variants") or res.get("failed"):
            continue
        names = list(res["targets"])
        for n in names:
            med = res["targets"][n]["median"]
            rows.append([res["scenario"], n, fmt(med.get("rate"), "n"),
                         fmt(med.get("cpu_us"), "us"), fmt(med.get("p99"), "us"),
                         "1" if n == names[0] else fmt_ratio(ratio(res, f"{n}/{names[0]}",
                                                                   "rate")),
                         "1" if n == names[0] else fmt_ratio(ratio(res, f"{n}/{names[0]}",
                                                                   "cpu_us"))])
    if not rows:
        return ""
    return table(["scenario", "variant", "req/s", "CPU µs/req", "p99 µs", "req/s vs plain",
                  "CPU vs plain"], rows)


def scenario_section(res):
    out = [f"### {res['scenario']}\n", f"{res['what']}.\n"]
    if res.get("failed"):
        return "\n".join(out + [f"**Failed:** `{res['failed']}`\n"])
    cols = COLUMNS[res["kind"]]
    header = ["target"] + [c[0] for c in cols]
    if res["kind"] == "wrk":
        header.append("syscalls/req")
    header += ["peak RSS MiB", "errors"]
    rows = []
    for name, t in res["targets"].items():
        row = [name] + [fmt(t["median"].get(key), unit) for _, key, unit in cols]
        if res["kind"] == "wrk":
            sc = t.get("syscalls") or {}
            row.append(fmt(sc.get("per_request")))
        row += [fmt(t.get("peak_rss_kib", 0) / 1024), t["errors"]]
        rows.append(row)
    out.append(table(header, rows))
    busy = [n for n, t in res["targets"].items() if t.get("saturated")]
    if busy:
        out.append(f"**Saturated** ({', '.join(busy)}): the median latency reached the time "
                   "a request waits when every connection is busy (connections / rate): the "
                   "system as a whole, client included, ran at capacity at this rate, and "
                   "latency measures the queue more than the proxy.\n")
    if res["ratios"]:
        rrows = [[r["pair"], stats.label(res["kind"], r["metric"]), f"{r['median']:.3f}",
                  f"{r['min']:.3f}", f"{r['max']:.3f}", r["rounds"]] for r in res["ratios"]]
        out.append(table(["ratio", "of", "median", "min", "max", "rounds"], rrows))
    plots = [f"![{p}](plots/{p}-{res['scenario']}.svg)" for p in ("latency", "cpu")
             if Path(res.get("_plots_dir", ""), f"{p}-{res['scenario']}.svg").exists()]
    if plots:
        out.append(" ".join(plots) + "\n")
    return "\n".join(out)


def fairness_section(meta):
    out = ["## Fairness\n", "Peer versions:\n"]
    out += [f"- **{p}**: {v}" for p, v in meta["versions"].items()]
    if meta.get("tls"):
        out += ["", "TLS negotiated with a default OpenSSL client (cipher / key exchange):\n"]
        out.append(table(["peer", "TLS 1.3", "TLS 1.2", "resumed 1.3", "resumed 1.2"],
                         [[p, v.get("tls1_3", "?"), v.get("tls1_2", "?"),
                           v.get("resumed_tls1_3", "?"), v.get("resumed_tls1_2", "?")]
                          for p, v in meta["tls"].items()]))
    out += ["", "The configs the peers ran with are in [configs/](configs/); bench/README.md "
            "says why each setting is what it is."]
    if meta.get("rate_basis"):
        b = meta["rate_basis"]
        out.append(f"\nThe paced scenarios offer a fraction of {b[0]}'s {b[1]:,.0f} req/s "
                   f"({b[2]}).")
    return "\n".join(out) + "\n"


def write_md(out, meta, results):
    peers = meta["peers"]
    md = [f"# sluice bench, {meta['date']}\n",
          f"`{meta['command']}`: {meta['rounds']} round(s) of {meta['duration']} s, "
          f"{'quick' if meta['quick'] else 'full'} run, {meta['wall_s']:.0f} s wall time, "
          f"{meta['host']['cpus']} CPUs ({meta['host']['kernel']}), load average before "
          f"{meta['host']['loadavg']}. sluice {meta['git']}.\n",
          "Ratios are sluice/peer, taken within each round and given as median (min–max) "
          "over the rounds. For req/s higher is better for sluice; for CPU, latency and "
          "memory lower is better. One run on a shared machine: read the spread. "
          "(sat.): that peer saturated at the offered rate (see the scenario).\n",
          "## Summary\n", main_table(results, peers)]
    vt = variants_table(results)
    if vt:
        md += ["### sluice alone (plugins against the plain route)\n", vt]
    if (out / "plots" / "ratio.svg").exists():
        md.append("![req/s ratio per scenario](plots/ratio.svg)\n")
    md.append("## Scenarios\n")
    for res in results:
        res["_plots_dir"] = str(out / "plots")
        md.append(scenario_section(res))
        res.pop("_plots_dir")
    md.append(fairness_section(meta))
    if meta.get("notes"):
        md += ["## Notes\n"] + [f"- {n}" for n in meta["notes"]] + [""]
    (out / "report.md").write_text("\n".join(md))


def write_tsv(out, results):
    runs = ["\t".join(["scenario", "target", "round"] + TSV_METRICS)]
    summary = ["\t".join(["scenario", "target", "errors", "peak_rss_kib", "syscalls_per_req"]
                         + [f"median_{m}" for m in TSV_METRICS[:-1]])]
    ratios = ["\t".join(["scenario", "pair", "metric", "median", "min", "max", "rounds"])]

    def cell(v):
        return "" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))
    for res in results:
        for name, t in res["targets"].items():
            for r in t["runs"]:
                runs.append("\t".join([res["scenario"], name, str(r["round"])] +
                                      [cell(stats.value(r, m)) for m in TSV_METRICS]))
            sc = (t.get("syscalls") or {}).get("per_request")
            summary.append("\t".join([res["scenario"], name, str(t["errors"]),
                                      cell(t.get("peak_rss_kib")), cell(sc)] +
                                     [cell(t["median"].get(m)) for m in TSV_METRICS[:-1]]))
        for r in res["ratios"]:
            ratios.append("\t".join([res["scenario"], r["pair"], r["metric"], cell(r["median"]),
                                     cell(r["min"]), cell(r["max"]), str(r["rounds"])]))
    for name, lines in (("runs", runs), ("summary", summary), ("ratios", ratios)):
        (out / f"{name}.tsv").write_text("\n".join(lines) + "\n")


def write_all(out, meta, results):
    out = Path(out)
    (out / "results.json").write_text(json.dumps({"meta": meta, "scenarios": results},
                                                 indent=1, default=str))
    write_tsv(out, results)
    write_md(out, meta, results)
