"""The command line: -t, -V, bad options, unusable configs (DESIGN.md, "CLI")."""

import re
import socket
import subprocess

import yaml

from conftest import SLUICE, basic_config, check_config, free_port


def run_sluice(*args, timeout=15):
    r = subprocess.run([str(SLUICE), *args], capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def write(tmp_path, conf, name="sluice.yaml"):
    p = tmp_path / name
    p.write_text(conf if isinstance(conf, str) else yaml.safe_dump(conf, sort_keys=False))
    return p


def hold_port(port):
    """Listen on 127.0.0.1:port ourselves (no SO_REUSEPORT, so nobody else can bind it)."""
    s = socket.socket()
    s.bind(("127.0.0.1", port))
    s.listen(8)
    return s


def test_check_mode_on_a_good_config_prints_configuration_ok_and_exits_0(tmp_path):
    path = write(tmp_path, basic_config(free_port(), {"app": ["127.0.0.1:9"]}))
    rc, out, err = check_config(path)
    assert rc == 0, err
    assert out == f"{path}: configuration ok\n"


def test_check_mode_binds_nothing_even_when_the_listen_port_is_taken(tmp_path):
    # If -t tried to bind its listener it would fail on the port we hold.
    port = free_port()
    path = write(tmp_path, basic_config(port, {"app": ["127.0.0.1:9"]}))
    with hold_port(port):
        rc, out, err = check_config(path)
    assert rc == 0, out + err
    assert f"{path}: configuration ok" in out


def test_check_mode_leaves_the_listen_port_free(tmp_path):
    port = free_port()
    path = write(tmp_path, basic_config(port, {"app": ["127.0.0.1:9"]}))
    rc, out, err = check_config(path)
    assert rc == 0, err
    with hold_port(port):  # would raise EADDRINUSE if anything still held it
        pass


def test_version_flag_prints_the_version_and_every_library_version():
    rc, out, err = run_sluice("-V")
    assert rc == 0, err
    lines = out.splitlines()
    assert re.fullmatch(r"sluice \d+\.\d+\.\d+\S*", lines[0]), lines[0]
    for lib, version in [
        ("libuv", r"1\.44\.\d+"),
        ("llhttp", r"8\.1\.\d+"),
        ("OpenSSL", r"3\.0\.\d+"),
        ("hiredis", r"0\.14\.\d+"),
        ("libyaml", r"0\.2\.\d+"),
        ("pcre2", r"10\.42"),
    ]:
        assert re.search(rf"^\s*{lib} {version}\b", out, re.M), f"{lib} missing in:\n{out}"


def test_an_unknown_option_exits_non_zero_with_usage():
    rc, out, err = run_sluice("--frobnicate")
    assert rc != 0
    assert "usage: sluice" in err
    assert out == ""


def test_a_stray_argument_exits_non_zero_with_usage(tmp_path):
    rc, out, err = run_sluice("-t", str(tmp_path / "x.yaml"))
    assert rc != 0
    assert "usage: sluice" in err


def test_a_listen_port_already_in_use_makes_sluice_exit_1_naming_the_address(tmp_path):
    port = free_port()
    path = write(tmp_path, basic_config(port, {"app": ["127.0.0.1:9"]}))
    with hold_port(port):
        rc, out, err = run_sluice("-c", str(path))
    assert rc == 1
    assert f"127.0.0.1:{port}" in err
    assert "in use" in err.lower()


def test_a_missing_config_file_is_reported_by_check_mode_with_exit_1(tmp_path):
    path = tmp_path / "nope.yaml"
    rc, out, err = check_config(path)
    assert rc == 1
    assert f"{path}: error: cannot read the file: No such file or directory" in err
    assert "configuration ok" not in out


def test_a_missing_config_file_stops_the_daemon_with_exit_1(tmp_path):
    path = tmp_path / "nope.yaml"
    rc, out, err = run_sluice("-c", str(path))
    assert rc == 1
    assert f"{path}: error: cannot read the file: " in err


def test_an_unreadable_config_path_names_the_reason(tmp_path):
    # A directory cannot be read as a file.
    rc, out, err = check_config(tmp_path)
    assert rc == 1
    assert re.search(rf"^{re.escape(str(tmp_path))}: error: cannot read the file: \S", err, re.M), err
