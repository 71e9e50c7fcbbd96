"""Plots made with gnuplot, each as SVG and PNG in OUT/plots/: the sluice/peer
ratios per scenario with their spread over rounds (ratio.svg for req/s,
ratio-cpu.svg for CPU per request or handshake), and per scenario the
latency percentiles of every target (latency-NAME.svg) and the CPU per
request of every target split into user and kernel time (cpu-NAME.svg)."""

import shutil
import subprocess
from pathlib import Path


TERMINALS = (("svg", 'svg size {w},{h} dynamic enhanced font "sans,11" background "white"'),
             ("png", 'pngcairo size {w},{h} enhanced font "sans,10"'))
PCTS = {"wrk": ["p50", "p75", "p90", "p99", "p99.9"], "paced": ["p50", "p90", "p99", "p99.9"]}


def gnuplot(d, name, body, w=900, h=480):
    """Write d/name.gp drawing body to name.svg and name.png, and run it."""
    lines = ["set datafile missing '?'", "set datafile separator '\\t'"]
    for i, (ext, term) in enumerate(TERMINALS):
        lines += [f"set terminal {term.format(w=w, h=h)}", f"set output '{d}/{name}.{ext}'"]
        lines += [body] if i == 0 else ["replot"]
    lines.append("unset output")
    gp = Path(d) / f"{name}.gp"
    gp.write_text("\n".join(lines) + "\n")
    r = subprocess.run(["gnuplot", str(gp)], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"gnuplot {gp}: {r.stderr.strip()}")


def cell(v):
    return "?" if v is None else f"{v:.6g}"


def ratio_plot(d, results, peers, metric, kinds, name, ylabel):
    others = [p for p in peers if p != "sluice"]
    rows = []
    for res in results:
        if res.get("failed") or res.get("variants") or res["kind"] not in kinds:
            continue
        row = [res["scenario"]]
        for p in others:
            r = next((x for x in res["ratios"] if x["pair"] == f"sluice/{p}"
                      and x["metric"] == metric), None)
            row += [cell(r and r["median"]), cell(r and r["min"]), cell(r and r["max"])]
        rows.append(row)
    if not rows or not others:
        return False
    data = Path(d) / f"{name}.dat"
    data.write_text("\n".join("\t".join(r) for r in rows) + "\n")
    using = ", ".join(
        f"'{data}' using {2 + 3 * i}:{3 + 3 * i}:{4 + 3 * i}{':xtic(1)' if i == 0 else ''} "
        f"title 'sluice/{p}'" for i, p in enumerate(others))
    body = "\n".join([
        "set style data histograms", "set style histogram errorbars gap 1 lw 1",
        "set style fill solid 0.8 border -1", "set boxwidth 0.9", "set grid ytics",
        "set xtics rotate by -35 nomirror", f"set ylabel '{ylabel}'", "set yrange [0:*]",
        "set key top left", "set arrow from graph 0, first 1 to graph 1, first 1 nohead "
        "dt 2 lw 1.5 lc rgb 'black' front",
        f"set title '{ylabel}: median and min–max over rounds (1 = parity)'", f"plot {using}"])
    gnuplot(d, name, body, w=max(700, 70 * len(rows) * max(1, len(others))))
    return True


def latency_plot(d, res):
    pcts = PCTS.get(res["kind"])
    if not pcts or not res["targets"]:
        return
    names = list(res["targets"])
    data = Path(d) / f"latency-{res['scenario']}.dat"
    data.write_text("\n".join(
        "\t".join([p] + [cell(res["targets"][n]["median"].get(p)) for n in names])
        for p in pcts) + "\n")
    using = ", ".join(f"'{data}' using {i + 2}{':xtic(1)' if i == 0 else ''} title '{n}'"
                      for i, n in enumerate(names))
    body = "\n".join([
        "set style data histograms", "set style histogram clustered gap 1",
        "set style fill solid 0.8 border -1", "set logscale y", "set grid ytics",
        "set ylabel 'latency (µs, log scale)'", "set key top left",
        f"set title '{res['scenario']}: latency percentiles (median over rounds)'",
        f"plot {using}"])
    gnuplot(d, f"latency-{res['scenario']}", body, w=700, h=420)


def cpu_plot(d, res):
    if not res["targets"]:
        return
    unit = {"handshake": "handshake", "idle": "connection"}.get(res["kind"], "request")
    data = Path(d) / f"cpu-{res['scenario']}.dat"
    data.write_text("\n".join(
        "\t".join([n, cell(t["median"].get("cpu_user_us")), cell(t["median"].get("cpu_sys_us"))])
        for n, t in res["targets"].items()) + "\n")
    body = "\n".join([
        "set style data histograms", "set style histogram rowstacked",
        "set style fill solid 0.8 border -1", "set boxwidth 0.6", "set grid ytics",
        "set yrange [0:*]", f"set ylabel 'proxy CPU µs per {unit}'", "set key top left",
        f"set title '{res['scenario']}: CPU per {unit}, user and kernel (median over rounds)'",
        f"plot '{data}' using 2:xtic(1) title 'user', '' using 3 title 'kernel'"])
    gnuplot(d, f"cpu-{res['scenario']}", body, w=600, h=420)


def make_all(out, results, peers):
    """All the plots; returns what could not be drawn (gnuplot missing or
    failing is a note, not a failed run)."""
    if shutil.which("gnuplot") is None:
        return ["gnuplot is not installed: no plots"]
    d = Path(out) / "plots"
    d.mkdir(parents=True, exist_ok=True)
    problems = []
    jobs = [lambda: ratio_plot(d, results, peers, "rate", ("wrk",), "ratio", "req/s sluice/peer"),
            lambda: ratio_plot(d, results, peers, "cpu_us", ("wrk", "handshake", "paced"),
                               "ratio-cpu", "CPU per request sluice/peer")]
    for res in results:
        if not res.get("failed"):
            jobs += [lambda res=res: latency_plot(d, res), lambda res=res: cpu_plot(d, res)]
    for job in jobs:
        try:
            job()
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
            problems.append(str(e))
    return problems

