"""`meson install`: the daemon, the man pages, the systemd unit and the
example configuration (as /etc/sluice/sluice.yaml, never over an existing
one), into a DESTDIR of the test's own, from the build the other tests run
(SLUICE_BUILD). The installed binary then checks and serves the installed
configuration, the installed pages format cleanly, the installed unit
passes `systemd-analyze verify`, and the installed gateway drops root
(user:) and refuses, cleanly, the reloads that would need it back. Nothing
is written outside the DESTDIR: the real /etc and /usr are not touched."""

import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests
import yaml

from conftest import BUILD, ROOT, free_port, stop_process, wait_for, wait_port
from tls_helpers import PKI, HttpsClient

CONF = "/etc/sluice/sluice.yaml"  # where the example goes, whatever the prefix


def meson_install(destdir):
    r = subprocess.run(["meson", "install", "-C", str(BUILD), "--destdir", str(destdir)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


class Installed:
    """A DESTDIR that `meson install` filled; paths as installed (without
    the DESTDIR) and where they are in it."""

    def __init__(self, destdir):
        self.dest = Path(destdir)
        self.output = meson_install(destdir)
        r = subprocess.run(["meson", "introspect", str(BUILD), "--installed"],
                           capture_output=True, text=True, timeout=60, check=True)
        self.plan = json.loads(r.stdout)  # build or source file -> installed path

    def at(self, path):
        """Where an installed absolute path is inside the DESTDIR."""
        return self.dest / str(path).lstrip("/")

    def installed(self, suffix):
        return [p for p in self.plan.values() if p.endswith(suffix)]

    @property
    def binary(self):
        (b,) = [p for src, p in self.plan.items() if src.endswith("gateway/sluice")]
        return b

    @property
    def unit(self):
        (u,) = self.installed("/systemd/system/sluice.service")
        return u

    @property
    def man_pages(self):
        return [p for p in self.plan.values() if re.search(r"/man/man\d/[^/]+\.\d$", p)]

    @property
    def mandir(self):
        return self.at(Path(self.man_pages[0]).parents[1])


@pytest.fixture(scope="module")
def real_etc():
    """The real /etc/sluice/sluice.yaml before the module's installs: the
    same after them (or still absent)."""
    def state():
        try:
            st = os.lstat(CONF)
            return (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            return None
    before = state()
    yield
    assert state() == before, f"{CONF} changed: an install wrote outside its DESTDIR"


@pytest.fixture(scope="module")
def inst(tmp_path_factory, real_etc):
    return Installed(tmp_path_factory.mktemp("install") / "dest")


def run_config(inst, directory, origin, **extra):
    """The installed example config, copied to directory with its addresses
    rewritten to free loopback ports (and its upstream to origin), as an
    administrator would edit it; extra keys are appended. Returns (path,
    gateway port, admin port)."""
    text = inst.at(CONF).read_text()
    conf = yaml.safe_load(text)
    port, admin = free_port(), free_port()
    listen = [l["address"] for l in conf["listen"]]
    assert len(listen) == 1, listen  # the example listens on one plain port
    text = text.replace(listen[0], f"127.0.0.1:{port}")
    text = text.replace(conf["admin"]["address"], f"127.0.0.1:{admin}")
    for u in conf["upstreams"].values():
        for t in u["targets"]:
            text = text.replace(t["address"] if isinstance(t, dict) else t, origin.address)
    if extra:
        text += "\n" + yaml.safe_dump(extra, sort_keys=False)
    path = Path(directory) / "sluice.yaml"
    path.write_text(text)
    return path, port, admin


def start(inst, path, port, directory):
    err = open(Path(directory) / "error.log", "ab")
    proc = subprocess.Popen([str(inst.at(inst.binary)), "-c", str(path)],
                            stdout=subprocess.DEVNULL, stderr=err)
    err.close()
    wait_port(port, proc=proc)
    return proc


def error_log(directory):
    return (Path(directory) / "error.log").read_text(errors="replace")


def test_install_puts_the_binary_man_pages_unit_and_config_in_place(inst):
    assert inst.binary.endswith("/sbin/sluice"), inst.binary
    assert os.access(inst.at(inst.binary), os.X_OK)
    assert sorted(Path(p).name for p in inst.man_pages) == [
        "sluice-plugin.3", "sluice.8", "sluice.yaml.5"]
    for p in inst.man_pages:
        assert inst.at(p).read_bytes() == (ROOT / "man" / Path(p).name).read_bytes()
    assert inst.unit.startswith(str(Path(inst.binary).parents[1]) + "/lib/systemd/system/")
    assert inst.at(CONF).read_bytes() == (ROOT / "conf" / "sluice.yaml").read_bytes()
    assert oct(inst.at(CONF).stat().st_mode & 0o777) == "0o644"
    # The first install leaves no example beside the file it installed.
    assert not inst.at(CONF + ".example").exists()


def test_the_installed_binary_checks_the_installed_config(inst):
    r = subprocess.run([str(inst.at(inst.binary)), "-t", "-c", str(inst.at(CONF))],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{inst.at(CONF)}: configuration ok\n", r.stdout
    assert " error:" not in r.stderr and " warning:" not in r.stderr, r.stderr


def test_the_installed_binary_serves_the_installed_config(inst, origin, tmp_path):
    path, port, admin = run_config(inst, tmp_path, origin)
    proc = start(inst, path, port, tmp_path)
    try:
        r = requests.get(f"http://127.0.0.1:{port}/hello", timeout=5)
        assert r.status_code == 200 and r.text == "Hello, world!", r.text
        assert r.headers["X-Request-Id"]
        wait_port(admin, proc=proc)
        st = requests.get(f"http://127.0.0.1:{admin}/status", timeout=5).json()
        assert st["config_file"] == str(path) and st["generation"] == 1, st
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "configuration reloaded" in error_log(tmp_path), what="the reload")
    finally:
        assert stop_process(proc) == 0, error_log(tmp_path)


@pytest.mark.skipif(shutil.which("man") is None, reason="man is missing: apt-get install man-db")
def test_the_installed_man_pages_format_without_warnings(inst):
    for page in inst.man_pages:
        r = subprocess.run(["man", "--warnings", "-l", str(inst.at(page))], capture_output=True,
                           text=True, timeout=60, env=dict(os.environ, MANWIDTH="80"))
        assert r.returncode == 0 and r.stderr == "", f"{page}:\n{r.stderr}"
        assert "NAME" in r.stdout and "sluice" in r.stdout, r.stdout[:500]


def installed_unit(inst):
    return inst.at(inst.unit).read_text()


def unit_settings(text):
    """[Service] settings: name -> list of values."""
    out, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif line and not line.startswith("#") and section == "[Service]":
            k, _, v = line.partition("=")
            out.setdefault(k, []).append(v)
    return out


def test_the_installed_unit_runs_the_installed_binary_as_a_notify_service(inst):
    s = unit_settings(installed_unit(inst))
    assert s["Type"] == ["notify"]
    assert s["ExecStart"] == [f"{inst.binary} -c {CONF}"], s["ExecStart"]
    assert s["ExecStartPre"] == [f"{inst.binary} -t -c {CONF}"], s["ExecStartPre"]
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    for key, value in [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                       ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                       ("CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"),
                       ("AmbientCapabilities", "CAP_NET_BIND_SERVICE")]:
        assert s[key] == [value], (key, s.get(key))
    assert int(s["LimitNOFILE"][0]) >= 65536
    assert "@" not in installed_unit(inst).replace("$MAINPID", "")  # no placeholder left


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is missing: apt-get install systemd")
def test_the_installed_unit_passes_systemd_analyze_verify(inst, tmp_path):
    """verify checks that the commands exist and that the Documentation=
    pages are there: the installed unit is verified with the paths meson
    wrote into it moved under the DESTDIR (nothing else changed), and with
    the installed man pages on MANPATH."""
    text = installed_unit(inst)
    assert inst.binary in text
    unit = tmp_path / "sluice.service"
    unit.write_text(text.replace(f"={inst.binary} ", f"={inst.at(inst.binary)} "))
    assert unit.read_text().count(str(inst.at(inst.binary))) == 2
    env = dict(os.environ, MANPATH=str(inst.mandir), SYSTEMD_LOG_COLOR="0")
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True,
                       timeout=60, env=env)
    # verify warns about unknown keys and bad values but still exits 0:
    # the check is that it says nothing at all.
    assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr
    # And the sandbox it sets up is a tight one ("OK" or better: at most
    # 4.9 on systemd's 0-10 exposure scale).
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--threshold=49",
                        "--no-pager", str(unit)], capture_output=True, text=True, timeout=60,
                       env=env)
    assert r.returncode == 0, r.stdout[-1500:] + r.stderr


def test_a_second_install_keeps_an_edited_config(tmp_path, real_etc):
    dest = tmp_path / "dest"
    meson_install(dest)
    conf = dest / CONF.lstrip("/")
    edited = conf.read_text().replace("shutdown_timeout: 30s", "shutdown_timeout: 5s")
    edited += "\n# edited by the administrator\n"
    conf.write_text(edited)
    os.chmod(conf, 0o640)
    out = meson_install(dest)
    assert conf.read_text() == edited
    assert oct(conf.stat().st_mode & 0o777) == "0o640"
    # The new example is left beside it, for comparison.
    example = dest / (CONF.lstrip("/") + ".example")
    assert example.read_bytes() == (ROOT / "conf" / "sluice.yaml").read_bytes()
    assert "Running custom install script" in out, out


@pytest.fixture
def open_dir():
    """A directory the unprivileged user can read: the config (and a key)
    is read again on reload, after the drop."""
    d = tempfile.mkdtemp(prefix="sluice-install-", dir="/tmp")
    os.chmod(d, 0o755)
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_the_installed_gateway_drops_root_and_refuses_reloads_that_need_it(inst, origin,
                                                                           open_dir):
    pki = PKI(open_dir)
    ca = pki.ca("ca", "install test CA")
    a = pki.issue("a", ca, "a.test", dns=["a.test"])
    b = pki.issue("b", ca, "b.test", dns=["b.test"])
    for f in (a.path, a.key_path, b.path):
        os.chmod(f, 0o644)
    os.chmod(b.key_path, 0o600)  # root's only: read at start, not after the drop
    tls_port = free_port()
    tls = {"address": f"127.0.0.1:{tls_port}",
           "tls": {"certificates": [{"cert": a.path, "key": a.key_path}]}}
    path, port, admin = run_config(inst, open_dir, origin, user="nobody", group="nogroup")
    base = path.read_text()
    conf = yaml.safe_load(base)
    conf["listen"].append(tls)
    path.write_text(yaml.safe_dump(conf, sort_keys=False))
    os.chmod(path, 0o644)
    proc = start(inst, path, port, open_dir)
    ctx = ssl.create_default_context(cafile=ca.path)

    def serving():
        assert requests.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
        with HttpsClient(tls_port, ctx, "a.test") as c:
            assert c.request("GET", "/")[0] == 200

    def reload_fails(what):
        before = error_log(open_dir).count("reload failed")
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: error_log(open_dir).count("reload failed") > before, what=what)
        return error_log(open_dir).split("reloading ")[-1]

    try:
        wait_for(lambda: "started" in error_log(open_dir), what="the start")
        with open(f"/proc/{proc.pid}/status") as f:
            st = dict(l.split(":", 1) for l in f if ":" in l)
        assert st["Uid"].split() == ["65534"] * 4, st["Uid"]
        assert st["Gid"].split() == ["65534"] * 4, st["Gid"]
        assert "as nobody" in error_log(open_dir)
        serving()

        # A port below 1024: only root may bind it.
        conf["listen"].append({"address": "127.0.0.1:81"})
        path.write_text(yaml.safe_dump(conf, sort_keys=False))
        log = reload_fails("the refused reload (port 81)")
        assert "cannot listen on 127.0.0.1:81: Permission denied" in log, log
        assert "the running configuration keeps serving" in log, log
        serving()
        del conf["listen"][-1]

        # A key only root can read: refused at its place in the file.
        conf["listen"][1]["tls"]["certificates"].append({"cert": b.path, "key": b.key_path})
        path.write_text(yaml.safe_dump(conf, sort_keys=False))
        line = next(i for i, l in enumerate(path.read_text().splitlines(), 1)
                    if b.key_path in l)
        log = reload_fails("the refused reload (unreadable key)")
        assert re.search(rf"{re.escape(str(path))}:{line}:\d+: error: "
                         r"listen\[1\]\.tls\.certificates\[1\]\.key: cannot load private key "
                         rf"{re.escape(b.key_path)}: .*Permission denied", log), log
        assert "keeps serving" in log, log
        serving()
        wait_port(admin, proc=proc)
        st = requests.get(f"http://127.0.0.1:{admin}/status", timeout=5).json()
        assert st["generation"] == 1, st
        metrics = requests.get(f"http://127.0.0.1:{admin}/metrics", timeout=5).text
        assert 'sluice_config_reloads_total{result="failed"} 2' in metrics, metrics
    finally:
        assert stop_process(proc) == 0, error_log(open_dir)
