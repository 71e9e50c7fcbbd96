"""Running scenarios: the servers of a scenario started, driven in interleaved
rounds (A B C D, A B C D, ...), the once-per-scenario extras measured (peak
RSS, syscalls per request, the TLS parameters negotiated), everything that
was started stopped again, whatever happens."""

import contextlib
import shutil
import time
import traceback

from . import load, peers, procs, scenarios, stats


class Runner:
    def __init__(self, env, args, peer_names):
        self.env, self.args, self.peers = env, args, peer_names
        self.t0 = time.monotonic()
        self.rate_basis = None  # (peer, req/s, where from) for the paced scenarios
        self.tls_seen = {}
        self.notes = []

    def log(self, msg):
        print(f"[{time.monotonic() - self.t0:6.1f}s] {msg}", flush=True)

    def seconds(self, sc):
        """Measured seconds of one run: --duration, but 1 s for s_time (a
        thousand handshakes and more are plenty for CPU per handshake)."""
        return 1 if sc.kind == "handshake" else self.args.duration

    def rounds(self, sc):
        """--rounds; the idle scenarios, whose figures hardly vary, do at most
        2 unless --rounds was given."""
        if sc.kind == "idle" and not getattr(self.args, "rounds_given", True):
            return min(2, self.args.rounds)
        return self.args.rounds

    # -- targets -------------------------------------------------------------

    def targets(self, sc, stack):
        if not sc.variants:
            out = [p for p in self.peers if sc.only_peers and p not in sc.only_peers]
            if out:
                self.notes.append(f"{sc.name}: {', '.join(out)} left out: {sc.why_only}")
            return scenarios.peer_targets(self.env, sc, self.peers)
        if "sluice" not in self.peers:
            return []
        if sc.variants == "jwt":
            return scenarios.jwt_targets(self.env)
        if shutil.which("redis-server") is None:
            self.notes.append("ratelimit: redis-server is not installed, no Redis variant")
            return scenarios.ratelimit_targets(self.env, None)[:2]
        port, redis = scenarios.start_redis(self.env)
        stack.callback(redis.stop)
        return scenarios.ratelimit_targets(self.env, port)

    # -- one run of one target -------------------------------------------------

    def drive(self, sc, target, server, script, warm=False):
        spec = target.spec(sc)
        secs = 1 if warm else self.seconds(sc)
        if sc.kind == "wrk":
            return load.run_wrk(server, spec, secs, script)
        if sc.kind == "handshake":
            return load.run_handshake(server, spec, secs)
        return load.run_paced(server, spec, secs, self.paced_rate(sc) * sc.rate_fraction,
                              self.env.build, warmup=0.5)

    def paced_rate(self, sc):
        """nginx's median req/s on ka-c50 in this run, or from a calibration
        run of ka-c50 on nginx (the first peer without nginx)."""
        if self.rate_basis is None:
            base = "nginx" if "nginx" in self.peers else self.peers[0]
            ka = scenarios.BY_NAME["ka-c50"]
            server = peers.start(self.env, base)
            try:
                script = load.wrk_script(self.env.tmp / "calibrate.lua", ka)
                r = load.run_wrk(server, ka, self.args.duration, script)
            finally:
                server.stop()
            self.rate_basis = (base, r["rate"], "a calibration run of ka-c50")
            self.log(f"paced: {base} does {r['rate']:.0f} req/s on ka-c50 (calibration)")
        return self.rate_basis[1]

    # -- rounds ----------------------------------------------------------------

    def progress(self, sc, r, runs):
        metric = stats.HEADLINE[sc.kind][0]
        parts = []
        for name, rs in runs.items():
            v = stats.value(rs[-1], metric) if rs else None
            parts.append(f"{name} {v:,.1f}" if v is not None else f"{name} -")
        self.log(f"  {sc.name} round {r + 1}/{self.rounds(sc)}: {stats.label(sc.kind, metric)}: "
                 + ", ".join(parts))

    def shared_rounds(self, sc, targets):
        """Every target started once for the whole scenario."""
        runs, extras, servers, scripts = {t.name: [] for t in targets}, {}, {}, {}
        try:
            for t in targets:
                servers[t.name] = t.start()
                if sc.gzip_level:
                    self.check_gzip(sc, t.name, servers[t.name])
                if sc.kind == "wrk":
                    scripts[t.name] = load.wrk_script(
                        self.env.tmp / f"{sc.name}-{t.name}.lua", t.spec(sc))
            if not self.args.quick and sc.kind in ("wrk", "paced"):
                for t in targets:  # warm-up: pools filled, caches and allocators warm
                    self.drive(sc, t, servers[t.name], scripts.get(t.name), warm=True)
            for r in range(self.args.rounds):
                for t in targets:
                    rec = self.drive(sc, t, servers[t.name], scripts.get(t.name))
                    rec["round"] = r
                    runs[t.name].append(rec)
                self.progress(sc, r, runs)
            for t in targets:
                extras[t.name] = self.once(sc, t, servers[t.name], scripts.get(t.name))
        finally:
            for s in servers.values():
                s.stop()
        return runs, extras

    def check_gzip(self, sc, name, server):
        """A compression scenario means something only if every target
        compresses, and correctly: check one response first."""
        c = load.encoding_check(server, sc, self.env.origin_port)
        if c["encoding"] != "gzip" or not c["decodes"]:
            raise RuntimeError(f"{name} answered Content-Encoding {c['encoding']}, "
                               f"{'a body that decodes' if c['decodes'] else 'a wrong body'}")
        self.notes.append(f"{sc.name}: {name} gzips the {c['identity_bytes']:,}-byte body to "
                          f"{c['bytes']:,} bytes")

    def fresh_rounds(self, sc, targets):
        """Idle scenarios: a new server for every run, so that each memory
        baseline is that of a process that has served one request only."""
        runs, extras = {t.name: [] for t in targets}, {}
        n = sc.idle_n_quick if self.args.quick else sc.idle_n
        if n > self.env.max_conns - 100:  # a low fd limit: fewer connections, said so
            n = max(1, self.env.max_conns - 100)
            self.notes.append(f"{sc.name}: {n} connections only (file descriptor limit "
                              f"{self.env.nofile})")
        for r in range(self.rounds(sc)):
            for t in targets:
                server = t.start()
                try:
                    rec = load.run_idle(server, t.spec(sc), n)
                    rec["round"] = r
                    rec["peak_rss_kib"] = procs.mem_kib(server.pids(), "VmHWM")
                    runs[t.name].append(rec)
                    if sc.tls:
                        self.tls_params(t.name, server)
                finally:
                    server.stop()
            self.progress(sc, r, runs)
        for name, rs in runs.items():
            extras[name] = {"peak_rss_kib": max(x["peak_rss_kib"] for x in rs), "conns": n}
        return runs, extras

    def once(self, sc, target, server, script):
        """What is measured once per scenario and target, after the rounds."""
        out = {"peak_rss_kib": procs.mem_kib(server.pids(), "VmHWM")}
        if sc.tls:
            self.tls_params(target.name, server)
        strace_ok = shutil.which("strace") and not self.args.no_strace
        if not shutil.which("strace") and not any(n.startswith("no strace") for n in self.notes):
            self.notes.append("no strace: strace is not installed, no syscall counts")
        if sc.kind == "wrk" and strace_ok and (not self.args.quick or sc.name == "ka-c50"):
            try:
                out["syscalls"] = load.syscall_pass(server, target.spec(sc), 1, script,
                                                    self.env.origin_port, self.env.tmp)
            except Exception as e:  # e.g. ptrace not permitted: the rest still counts
                self.notes.append(f"{sc.name}/{target.name}: no syscall count ({e})")
        return out

    def tls_params(self, name, server):
        base = name if name in peers.PEERS else "sluice"
        if base not in self.tls_seen:
            self.tls_seen[base] = load.negotiated(server.tls_port, self.env.tmp)

    # -- a scenario --------------------------------------------------------------

    def run(self, sc, index, total):
        self.log(f"[{index}/{total}] {sc.name}: {sc.what}")
        try:
            if sc.kind == "paced":
                self.paced_rate(sc)
            with contextlib.ExitStack() as stack:
                targets = self.targets(sc, stack)
                if not targets:
                    self.notes.append(f"{sc.name}: skipped (needs sluice in --peers)")
                    return None
                if sc.kind == "idle":
                    runs, extras = self.fresh_rounds(sc, targets)
                else:
                    runs, extras = self.shared_rounds(sc, targets)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as e:
            self.log(f"  {sc.name} FAILED: {e}")
            self.notes.append(f"{sc.name}: FAILED: {e}")
            return {"scenario": sc.name, "kind": sc.kind, "what": sc.what, "failed": str(e),
                    "traceback": traceback.format_exc(), "targets": {}, "ratios": []}
        res = stats.summarize(sc, runs, extras)
        if sc.name == "ka-c50" and self.rate_basis is None:
            base = "nginx" if "nginx" in runs else next(iter(runs))
            self.rate_basis = (base, res["targets"][base]["median"]["rate"], "ka-c50 (median)")
        for r in res["ratios"]:
            if r["metric"] == stats.HEADLINE[sc.kind][0]:
                self.log(f"  {r['pair']} {stats.label(sc.kind, r['metric'])}: {r['median']:.3f} "
                         f"[{r['min']:.3f}-{r['max']:.3f}]")
        return res
