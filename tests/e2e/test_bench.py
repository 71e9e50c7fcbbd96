"""bench/run, the benchmark suite, end to end on its smallest scenario.

One round of one second of ka-c10 through every installed peer: the run
must exit 0, write report.md and a results.json that parses and has an
entry for each installed peer, and leave no process behind. No timing is
asserted: this checks the harness, not the figures. And sluice-paced, the
fixed-rate load generator, on its own against the origin.
"""

import ctypes
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BUILD, ROOT

BENCH = ROOT / "bench" / "run"
PEER_BINARIES = {"nginx": "nginx", "haproxy": "haproxy", "h2o": "h2o"}
PR_SET_CHILD_SUBREAPER = 36


def children():
    """{pid: command line} of this process's live children."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
            if int(stat[1]) == os.getpid() and stat[0] != "Z":
                out[int(d)] = Path(f"/proc/{d}/cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, IndexError, ValueError):
            pass
    return out


def run_as_subreaper(args, **kw):
    """Run args with this process as the child subreaper: whatever the run
    leaves behind becomes our child when its parents exit, so that after it
    children() lists exactly the leftovers. Returns (result, leftovers)."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    before = children()
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    try:
        r = subprocess.run(args, **kw)
        left = {p: c for p, c in children().items() if p not in before}
    finally:
        prctl(PR_SET_CHILD_SUBREAPER, 0)
    return r, left


def test_bench_quick_smallest_scenario(tmp_path):
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (scripts/deps installs it)")
    if not (BUILD / "bench" / "paced" / "sluice-paced").exists():
        pytest.skip("bench/paced is not built")
    installed = ["sluice"] + [p for p, b in PEER_BINARIES.items() if shutil.which(b)]
    out = tmp_path / "out"
    env = dict(os.environ, SLUICE_BUILD=str(BUILD))
    r, left = run_as_subreaper([sys.executable, str(BENCH), "--quick", "--only", "ka-c10",
                                "--duration", "1", "--rounds", "1", "--out", str(out)],
                               capture_output=True, text=True, timeout=150, env=env)
    for pid in left:  # fail, but leave nothing running either
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    assert not left, left
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]

    report = (out / "report.md").read_text()
    assert "## Summary" in report and "ka-c10" in report
    results = json.loads((out / "results.json").read_text())
    assert results["meta"]["peers"] == installed
    (sc,) = results["scenarios"]
    assert sc["scenario"] == "ka-c10" and not sc.get("failed")
    for peer in installed:
        t = sc["targets"][peer]
        assert t["runs"] and t["runs"][0]["ops"] > 0, peer
        assert t["errors"] == 0, (peer, t["runs"])
        assert t["median"]["rate"] > 0 and t["median"]["cpu_us"] >= 0
    pairs = {x["pair"] for x in sc["ratios"] if x["metric"] == "rate"}
    assert pairs == {f"sluice/{p}" for p in installed if p != "sluice"}
    for name in ("runs.tsv", "summary.tsv", "ratios.tsv"):
        assert (out / name).read_text().count("\n") >= 2
    for peer in installed:
        assert list((out / "configs").glob(f"{peer}-w1.*")), peer


def test_paced_counts_every_scheduled_request(origin):
    """sluice-paced sends exactly rate x (warm-up + duration) requests and
    records the measured ones, with percentiles in order; a closed port is
    an error, not a hang."""
    paced = BUILD / "bench" / "paced" / "sluice-paced"
    if not paced.exists():
        pytest.skip("bench/paced is not built")
    r = subprocess.run([str(paced), "-p", str(origin.port), "-c", "4", "-r", "400", "-d", "1",
                        "-w", "0.5", "-g", "100"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["sent"] == out["completed"] == 600
    assert out["errors"] == out["non2xx"] == out["unfinished"] == 0
    lat = out["latency_us"]
    assert lat["count"] == 400
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99.9"] <= lat["max"]

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = subprocess.run([str(paced), "-p", str(port), "-c", "2", "-r", "10", "-d", "1"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 3 and json.loads(r.stdout)["errors"] >= 1
