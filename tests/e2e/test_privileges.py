"""user: and group: — the gateway binds its listeners and reads its key files
as root, then runs as an unprivileged user for good. What would need root
later fails cleanly: a reload asking for a port below 1024 is refused and the
running configuration keeps serving."""

import os
import shutil
import subprocess
import tempfile

import pytest
import requests
import yaml

from conftest import SLUICE, Sluice, basic_config, check_config, free_port, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")


@pytest.fixture
def open_dir():
    """A directory the unprivileged user can read (the config is read again
    on reload, after the drop)."""
    d = tempfile.mkdtemp(prefix="sluice-priv-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def ids(pid):
    """(uids, gids, groups) of every thread of pid."""
    out = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            st = dict(l.split(":", 1) for l in f if ":" in l)
        out.add((st["Uid"].split()[0], st["Uid"].split()[1], st["Gid"].split()[1],
                 st["Groups"].strip()))
    return out


def test_user_drops_every_thread_to_the_user_once_listening(sluice_factory, origin):
    conf = basic_config(free_port(), {"app": [origin.address]}, user="nobody", workers=2)
    conf["admin"] = {"address": f"127.0.0.1:{free_port()}"}
    s = sluice_factory(conf)
    wait_for(lambda: "started" in s.error_log(), what="start")
    assert ids(s.proc.pid) == {("65534", "65534", "65534", "65534")}, ids(s.proc.pid)
    assert requests.get(s.url + "/", timeout=5).status_code == 200
    assert "as nobody" in s.error_log()


def test_group_replaces_the_users_group(sluice_factory, origin):
    conf = basic_config(free_port(), {"app": [origin.address]}, user="nobody", group="nogroup")
    s = sluice_factory(conf)
    wait_for(lambda: "started" in s.error_log(), what="start")
    (uid, euid, gid, groups), = ids(s.proc.pid)
    assert (uid, euid, gid, groups) == ("65534", "65534", "65534", "65534")
    conf["group"] = "daemon"
    s2 = sluice_factory(dict(conf, listen=[{"address": f"127.0.0.1:{free_port()}"}]), name="s2")
    wait_for(lambda: "started" in s2.error_log(), what="start")
    (_, _, gid2, _), = ids(s2.proc.pid)
    assert gid2 == "1"  # daemon


def test_a_reload_that_needs_root_fails_and_traffic_keeps_flowing(origin, open_dir):
    port = free_port()
    conf = basic_config(port, {"app": [origin.address]}, user="nobody")
    # In open_dir: the config is read again on reload, as nobody.
    s = Sluice(open_dir, conf)
    os.chmod(s.conf_path, 0o644)
    try:
        s.start()
        wait_for(lambda: "started" in s.error_log(), what="start")
        assert requests.get(s.url + "/", timeout=5).status_code == 200
        # A reload that needs only what nobody has works...
        conf["upstreams"]["app"]["retries"] = 1
        s.reload(conf)
        assert s.error_log().count("configuration reloaded") == 1, s.error_log()[-2000:]
        # ...one that needs a port below 1024 does not, and the old one serves.
        conf["listen"].append({"address": "127.0.0.1:81"})
        s.reload(conf)
        log = s.error_log()
        assert "reload failed" in log and "127.0.0.1:81" in log and "ermission denied" in log, log
        for _ in range(20):
            assert requests.get(s.url + "/", timeout=5).status_code == 200
        # A reload asking for another user warns that it takes a restart.
        del conf["listen"][1]
        conf["user"] = "daemon"
        s.reload(conf)
        assert "take effect when the gateway starts" in s.error_log()
        assert ids(s.proc.pid) == {("65534", "65534", "65534", "65534")}
    finally:
        assert s.stop() == 0


def test_switching_user_needs_root(origin, open_dir):
    conf = os.path.join(open_dir, "c.yaml")
    with open(conf, "w") as f:
        f.write(yaml.safe_dump(basic_config(free_port(), {"app": [origin.address]},
                                            user="daemon")))
    os.chmod(conf, 0o644)
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        str(SLUICE), "-c", conf], capture_output=True, text=True, timeout=20)
    assert r.returncode == 1, r.stderr
    assert "need the gateway started as root" in r.stderr and "not started" in r.stderr, r.stderr


@pytest.mark.parametrize("key,value,message", [
    ("user", "no-such-user-here", 'no user "no-such-user-here" on this system'),
    ("group", "no-such-group-here", 'no group "no-such-group-here" on this system'),
])
def test_an_unknown_user_or_group_is_a_warning_and_starting_fails(tmp_path, origin, key, value,
                                                                  message):
    """sluice -t warns (the config may be checked where the account does not
    exist yet); starting without it fails and says why."""
    path = tmp_path / "c.yaml"
    conf = basic_config(free_port(), {"app": [origin.address]})
    conf[key] = value
    path.write_text(yaml.safe_dump(conf, sort_keys=False))
    rc, out, err = check_config(path)
    line = next(i for i, l in enumerate(path.read_text().splitlines(), 1)
                if l.startswith(key + ":"))
    assert rc == 0, err
    assert f"c.yaml:{line}:" in err and "warning" in err and message in err, err
    r = subprocess.run([str(SLUICE), "-c", str(path)], capture_output=True, text=True, timeout=20)
    assert r.returncode == 1, r.stderr
    assert f"{value}: no such {key} on this system; not started" in r.stderr, r.stderr
