"""Configs that cannot run code or leak files, through the command lines of train_net.py and
demo/demo.py: one line ``<program>: error: ...`` before torch is imported (exit 2 for
train_net.py, 1 for the demo, as for every input error), nothing downloaded unless
``--allow-remote-config``, nothing executed, no file content printed. The one allowed download
comes from a server on 127.0.0.1 started by the test (no network)."""

import functools
import http.server
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TRAIN_NET = ROOT / "train_net.py"
DEMO = ROOT / "demo" / "demo.py"
INSTANT_TEST = ROOT / "configs/avss_synth/ovavss_effnet_yamnet_minilm_instant_test.yaml"
SECRET = "root:$6$s3cr3tSALT$hashhashhash:19000:0:99999:7:::"
EXIT = {"train_net.py": 2, "demo.py": 1}


@pytest.fixture
def server(tmp_path):
    """A local HTTP server for the files of tmp_path/www; yields its base URL."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _run(program, config, tmp_path, *flags, env=None):
    """Run ``program`` on ``config`` from tmp_path (where a folder 'http:' may lie)."""
    out = tmp_path / "out"
    if program == "train_net.py":
        argv = [str(TRAIN_NET), "--config-file", str(config), *flags, "OUTPUT_DIR", str(out)]
    else:
        video = tmp_path / "clip.mp4"
        video.write_bytes(b"\0" * 64)  # never read: the config is checked first
        argv = [str(DEMO), "--video", str(video), "--config-file", str(config), "--output"]
        argv += [str(out), *flags]
    environ = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
        "HOME": str(tmp_path / "home"),
        "OVAVSS_D2_CACHE": str(tmp_path / "cache"),
        **(env or {}),
    }
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=environ,
    )
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("import time:")]
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert proc.returncode == EXIT[program], proc.stderr[-2000:]
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{program}: error: ")
    assert "torch" not in imported and "detectron2" not in imported
    assert not out.exists()
    return errors[0][len(f"{program}: error: ") :]


@pytest.mark.parametrize("program", sorted(EXIT))
def test_url_base_refused_even_with_a_local_folder_of_its_name(program, tmp_path, server):
    www, url = server
    marker = tmp_path / "PWNED"
    (www / "base.yaml").write_text(f'MODEL: !!python/object/apply:os.system ["touch {marker}"]\n')
    # The tester's setup: a local folder named like the URL made the old check read that instead.
    host = url.split("//")[1]
    local = tmp_path / "http:" / host / "base.yaml"
    local.parent.mkdir(parents=True)
    local.write_text(f"_BASE_: {INSTANT_TEST}\n")
    config = tmp_path / "config.yaml"
    config.write_text(f"_BASE_: {url}/base.yaml\n")
    message = _run(program, config, tmp_path)
    assert message.startswith(f"{config}: _BASE_ {url}/base.yaml: remote configs are refused")
    assert "--allow-remote-config" in message
    assert not marker.exists()
    assert not (tmp_path / "cache").exists() and not (tmp_path / "home").exists()  # no download


@pytest.mark.parametrize("program", sorted(EXIT))
def test_allowed_url_is_safe_loaded_never_run(program, tmp_path, server):
    www, url = server
    marker = tmp_path / "PWNED"
    (www / "base.yaml").write_text(f'MODEL: !!python/object/apply:os.system ["touch {marker}"]\n')
    config = tmp_path / "config.yaml"
    config.write_text(f"_BASE_: {url}/base.yaml\n")
    message = _run(program, config, tmp_path, "--allow-remote-config")
    assert message == (
        f"{config}: _BASE_ {url}/base.yaml: not a readable YAML mapping (YAML tag refused at line "
        "1, column 8: configs are plain YAML (the safe loader builds no Python objects))"
    )
    assert not marker.exists()
    cached = list((tmp_path / "cache" / "downloads").glob("*/base.yaml"))
    assert len(cached) == 1 and len(cached[0].parent.name) == 64  # sha256 of the URL
    assert not (tmp_path / "home" / ".torch").exists()  # not iopath's cache


def test_environment_variable_allows_urls(tmp_path, server):
    www, url = server
    (www / "base.yaml").write_text("MODEL: [1\n")
    config = tmp_path / "config.yaml"
    config.write_text(f"_BASE_: {url}/base.yaml\n")
    message = _run("train_net.py", config, tmp_path, env={"OVAVSS_ALLOW_REMOTE_CONFIG": "1"})
    assert message.startswith(f"{config}: _BASE_ {url}/base.yaml: not a readable YAML mapping")


@pytest.mark.parametrize("program", sorted(EXIT))
def test_shadow_like_base_is_not_printed(program, tmp_path):
    secret = tmp_path / "shadow"
    secret.write_text(f"{SECRET}\ndaemon:*:19000:0:99999:7:::\n")
    config = tmp_path / "config.yaml"
    config.write_text(f"_BASE_: {secret}\n")
    message = _run(program, config, tmp_path)
    assert message == (
        f"{config}: _BASE_ {secret}: not a readable YAML mapping (holds keys that are not config "
        "names such as MODEL)"
    )


@pytest.mark.parametrize("program", sorted(EXIT))
def test_python_tag_in_a_local_config_is_refused(program, tmp_path):
    marker = tmp_path / "PWNED"
    config = tmp_path / "config.yaml"
    config.write_text(
        f"_BASE_: {INSTANT_TEST}\nSEED: !!python/object/apply:os.system ['touch {marker}']\n"
    )
    message = _run(program, config, tmp_path)
    assert message == (
        f"{config}: YAML tag refused at line 2, column 7: configs are plain YAML (the safe loader "
        "builds no Python objects)"
    )
    assert not marker.exists()
