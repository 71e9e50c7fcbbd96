"""Processes the bench starts: ports, starting and stopping, /proc sampling.

Every process goes through start() and is recorded in STARTED; stop_all()
(called from bench/run's finally block and its signal handlers) stops what
is still running, by PID, and then any descendant left over. Children get a
raised RLIMIT_NOFILE (10,000 idle connections need it), their own session
(Ctrl-C reaches the bench only, which then stops them in order) and
PR_SET_PDEATHSIG, so that even a bench killed with SIGKILL leaves nothing.
"""

import ctypes
import os
import resource
import signal
import socket
import subprocess
import time

TICKS = os.sysconf("SC_CLK_TCK")
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
STARTED = []  # running now
EVER = []     # every process started, for the final check


def free_port():
    """A loopback port nothing listens on right now (the kernel picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def raise_nofile(want=65536):
    """RLIMIT_NOFILE up to want (root may raise the hard limit), else up to the
    hard limit; for this process and the children it starts. Returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limit in ((max(want, hard), max(want, hard)), (hard, hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, limit)
            return limit[0]
        except (ValueError, OSError):
            pass
    return soft


def _child_setup():
    raise_nofile()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


class Proc:
    """One started process; stop() ends it and whatever it forked."""

    def __init__(self, args, name=None, stdout=None, stderr=None, stdin=None, cwd=None):
        self.name = name or os.path.basename(args[0])
        self.popen = subprocess.Popen(
            [str(a) for a in args], cwd=cwd, preexec_fn=_child_setup, start_new_session=True,
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=stdout if stdout is not None else subprocess.DEVNULL,
            stderr=stderr if stderr is not None else subprocess.DEVNULL)
        self.pid = self.popen.pid
        self.tree_seen = set()
        STARTED.append(self)
        EVER.append(self)

    def poll(self):
        return self.popen.poll()

    def tree(self):
        """This process and its descendants now: [pid, ...]."""
        pids = descendants(self.pid) if self.popen.poll() is None else []
        self.tree_seen.update((p, start_time(p)) for p in pids)
        return pids

    def signal(self, sig):
        if self.popen.poll() is None:
            self.popen.send_signal(sig)

    def stop(self, timeout=10.0):
        self.tree()
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        orphans = [(p, st) for p, st in self.tree_seen if p != self.pid]
        if orphans:  # helpers that outlived their master (h2o's), ours to reap
            end_orphans(orphans)
        reap_strays()
        if self in STARTED:
            STARTED.remove(self)


def alive(pid, started):
    """pid is still the process that started at `started`, and not a zombie."""
    try:
        f = _stat(pid)
    except OSError:
        return False
    return started is not None and int(f[19]) == started and f[0] != "Z"


def reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not ours (no subreaper): init reaps it
        pass


def end_orphans(pairs, grace=2.0):
    """SIGTERM, then after grace seconds SIGKILL, and reap (become_subreaper()
    made them our children when their parent died)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        left = [(p, st) for p, st in pairs if alive(p, st)]
        for p, _ in left:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while left and time.monotonic() < deadline:
            for p, _ in left:
                reap(p)
            left = [(p, st) for p, st in left if alive(p, st)]
            time.sleep(0.02)
        for p, _ in pairs:
            reap(p)


def strays():
    """Our children that no running Popen owns, as (pid, state): helpers a peer
    forked that outlived their parent and came to us (become_subreaper())."""
    owned = {p.pid for p in EVER if p.popen.returncode is None}
    me, out = os.getpid(), []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) not in owned:
            try:
                f = _stat(d)
                if int(f[1]) == me:
                    out.append((int(d), f[0]))
            except (OSError, IndexError, ValueError):
                pass
    return out


def reap_strays(kill=False):
    """Reap the zombies among strays(); with kill, end the live ones first."""
    if kill:
        end_orphans([(pid, start_time(pid)) for pid, st in strays() if st != "Z"], grace=1.0)
    for pid, st in strays():
        if st == "Z":
            reap(pid)


def become_subreaper():
    """Orphans of the processes we start become our children, not init's: a
    helper left by a peer is then stopped and reaped by us, never a zombie."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1)
    except OSError:
        pass


def start(args, port=None, **kw):
    """Start args; with port, wait until it listens there (or fail)."""
    p = Proc(args, **kw)
    if port is not None:
        try:
            wait_port(port, proc=p.popen)
        except Exception:
            p.stop()
            raise
    return p


def stop_all():
    for p in reversed(list(STARTED)):
        try:
            p.stop(timeout=5)
        except Exception:  # keep stopping the others
            pass
    time.sleep(0.1)
    reap_strays(kill=True)


def _stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def start_time(pid):
    try:
        return int(_stat(pid)[19])
    except (OSError, IndexError):
        return None


def descendants(root):
    """root and every process below it, from one scan of /proc."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                parent[int(d)] = int(_stat(d)[1])
            except (OSError, IndexError, ValueError):
                pass
    out, frontier = [root], [root]
    while frontier:
        frontier = [p for p, pp in parent.items() if pp in frontier]
        out += frontier
    return out


def cpu_times(pids):
    """(user, system) CPU seconds of the processes, their threads included."""
    user = system = 0
    for pid in pids:
        try:
            f = _stat(pid)
        except OSError:
            continue
        user += int(f[11])
        system += int(f[12])
    return user / TICKS, system / TICKS


def mem_kib(pids, field):
    """Sum of a /proc/PID/status field (VmRSS, VmHWM) over pids, in KiB."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def survivors():
    """Processes the bench started (or saw forked below them) that still run."""
    out = []
    for p in EVER:
        if p.popen.poll() is None:
            out.append((p.pid, p.name))
        out += [(pid, p.name) for pid, st in p.tree_seen if pid != p.pid and alive(pid, st)]
    return out + [(pid, "stray") for pid, st in strays() if st != "Z"]
