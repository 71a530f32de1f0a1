"""The one config reader (ovavss_d2/utils/safe_config.py) and the download cache
(ovavss_d2/utils/downloads.py): local files and YAML's safe loader only, URLs refused unless
allowed, no file content in errors, downloads keyed by the whole URL. No network: the download
function is replaced by a fake that serves a dict of URL -> bytes."""

import os
from pathlib import Path

import pytest

from ovavss_d2.utils import downloads, safe_config
from ovavss_d2.utils.preflight import InputError, merge_config, read_config_chain
from ovavss_d2.utils.safe_config import load_config_chain

SECRET = "root:$6$s3cr3tSALT$hashhashhash:19000:0:99999:7:::"


@pytest.fixture
def served(monkeypatch, tmp_path):
    """URL -> body served by a fake downloader (its calls are counted); the cache in tmp_path."""
    monkeypatch.setenv("OVAVSS_D2_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(safe_config.ALLOW_REMOTE_ENV, raising=False)
    bodies = {}
    calls = []

    def fetch(url, out, max_bytes):
        calls.append(url)
        if url not in bodies:
            raise downloads.DownloadError(f"{url}: download failed (HTTP Error 404: Not Found)")
        out.write(bodies[url])

    monkeypatch.setattr(downloads, "_fetch", fetch)
    bodies["calls"] = calls
    return bodies


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --- URLs --------------------------------------------------------------------------------------


def test_url_base_is_refused_even_when_a_local_folder_of_its_name_exists(
    served, tmp_path, monkeypatch
):
    # The tester's case: a folder 'http:' next to the config made the old check pass.
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "http:" / "evil.example" / "base.yaml", "MODEL:\n  DEVICE: cpu\n")
    config = _write(tmp_path / "config.yaml", "_BASE_: http://evil.example/base.yaml\n")
    with pytest.raises(InputError) as info:
        load_config_chain(str(config))
    message = str(info.value)
    assert message.startswith(f"{config}: _BASE_ http://evil.example/base.yaml: remote configs")
    assert "--allow-remote-config" in message and "\n" not in message
    assert served["calls"] == []  # nothing downloaded


@pytest.mark.parametrize("url", ["https://h/c.yaml", "detectron2://x/c.yaml", "file:///etc/x"])
def test_url_config_file_is_refused(served, url):
    with pytest.raises(InputError, match="remote configs are refused"):
        read_config_chain(url)
    assert served["calls"] == []


def test_allowed_url_is_read_with_the_safe_loader(served, tmp_path):
    marker = tmp_path / "PWNED"
    served["https://evil.example/base.yaml"] = (
        f'MODEL: !!python/object/apply:os.system ["touch {marker}"]\n'.encode()
    )
    config = _write(tmp_path / "config.yaml", "_BASE_: https://evil.example/base.yaml\n")
    with pytest.raises(InputError) as info:
        load_config_chain(str(config), allow_remote=True)
    assert "YAML tag refused at line 1, column 8" in str(info.value)
    assert "os.system" not in str(info.value)
    assert not marker.exists()


def test_allowed_url_chain_merges_and_resolves_against_the_url(served, tmp_path, monkeypatch):
    served["https://h/a/child.yaml"] = b"_BASE_: ../base.yaml\nSOLVER:\n  MAX_ITER: 3\n"
    served["https://h/base.yaml"] = b"SOLVER:\n  MAX_ITER: 1\n  BASE_LR: 0.5\n"
    config = _write(tmp_path / "config.yaml", "_BASE_: https://h/a/child.yaml\nSEED: 4\n")
    monkeypatch.setenv(safe_config.ALLOW_REMOTE_ENV, "1")
    assert load_config_chain(str(config)) == {"SOLVER": {"MAX_ITER": 3, "BASE_LR": 0.5}, "SEED": 4}
    calls = list(served["calls"])
    assert load_config_chain(str(config)) == {"SOLVER": {"MAX_ITER": 3, "BASE_LR": 0.5}, "SEED": 4}
    assert served["calls"] == calls  # the second read came from the cache


def test_allowed_url_that_fails_is_one_line(served, tmp_path):
    config = _write(tmp_path / "config.yaml", "_BASE_: https://h/gone.yaml\n")
    with pytest.raises(InputError) as info:
        load_config_chain(str(config), allow_remote=True)
    assert str(info.value) == (
        f"{config}: _BASE_ https://h/gone.yaml: not a readable YAML mapping (download failed "
        "(HTTP Error 404: Not Found))"
    )


# --- no file content in errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        f"{SECRET}\ndaemon:*:19000:0:99999:7:::\n",  # /etc/shadow: its lines parse as keys
        f"{SECRET}\n",
        f"token: [{SECRET}\n",  # malformed YAML
        f'MODEL: "{SECRET}\n',  # an unclosed quote
        f"- {SECRET}\n",  # a list
        f"*{SECRET}\n",  # an undefined alias, which PyYAML's message quotes
    ],
)
def test_a_base_that_is_not_a_config_is_reported_without_its_content(content, tmp_path):
    secret = _write(tmp_path / "shadow", content)
    config = _write(tmp_path / "config.yaml", f"_BASE_: {secret}\n")
    with pytest.raises(InputError) as info:
        load_config_chain(str(config))
    message = str(info.value)
    assert message.startswith(f"{config}: _BASE_ {secret}: not a readable YAML mapping (")
    assert "s3cr3t" not in message and "hashhash" not in message and "\n" not in message


def test_the_top_file_is_reported_without_its_content(tmp_path):
    secret = _write(tmp_path / "shadow", f"{SECRET}\ndaemon:*:19000:0:99999:7:::\n")
    with pytest.raises(InputError) as info:
        load_config_chain(str(secret))
    assert str(info.value) == f"{secret}: holds keys that are not config names such as MODEL"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files without read permission")
def test_an_unreadable_base(tmp_path):
    secret = _write(tmp_path / "shadow", "MODEL:\n  DEVICE: cpu\n")
    secret.chmod(0)
    config = _write(tmp_path / "config.yaml", f"_BASE_: {secret}\n")
    with pytest.raises(InputError, match=r"not a readable YAML mapping \(no read permission"):
        load_config_chain(str(config))


def test_an_unreadable_base_as_root_too(tmp_path, monkeypatch):
    secret = _write(tmp_path / "shadow", SECRET + "\n")
    config = _write(tmp_path / "config.yaml", f"_BASE_: {secret}\n")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: p != str(secret) and real_access(p, mode))
    with pytest.raises(InputError) as info:
        load_config_chain(str(config))
    assert str(info.value) == (
        f"{config}: _BASE_ {secret}: not a readable YAML mapping (no read permission)"
    )


def test_a_binary_base(tmp_path):
    _write(tmp_path / "config.yaml", "_BASE_: blob.bin\n")
    (tmp_path / "blob.bin").write_bytes(b"\xff\xfe\x00secret")
    with pytest.raises(InputError, match=r"not a readable YAML mapping \(not a text file"):
        load_config_chain(str(tmp_path / "config.yaml"))


def test_malformed_yaml_gives_line_and_column_without_the_line(tmp_path):
    config = _write(tmp_path / "bad.yaml", "MODEL:\n  DEVICE: cpu\n   WEIGHTS: x\n")
    with pytest.raises(InputError) as info:
        load_config_chain(str(config))
    assert str(info.value) == (
        f"{config}: malformed YAML at line 3, column 11: mapping values are not allowed here"
    )


def test_tabs_are_still_named(tmp_path):
    config = _write(tmp_path / "tab.yaml", "MODEL:\n\tDEVICE: cpu\n")
    with pytest.raises(InputError, match=r"found character '\\t' that cannot start any token"):
        load_config_chain(str(config))


def test_python_tag_in_a_local_file_is_refused_not_run(tmp_path):
    marker = tmp_path / "PWNED"
    config = _write(
        tmp_path / "c.yaml", f'SEED: !!python/object/apply:os.system ["touch {marker}"]\n'
    )
    with pytest.raises(InputError, match="YAML tag refused at line 1, column 7"):
        load_config_chain(str(config))
    assert not marker.exists()


def test_anchor_bombs_are_refused(tmp_path):
    lines = ["a0: &a0 [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    config = _write(tmp_path / "bomb.yaml", "\n".join(lines) + "\n")
    with pytest.raises(InputError, match="more than 100000 values"):
        load_config_chain(str(config))


# --- chains ------------------------------------------------------------------------------------


def test_relative_bases_resolve_against_the_including_file(tmp_path, monkeypatch):
    _write(tmp_path / "configs" / "Base.yaml", "SOLVER:\n  MAX_ITER: 1\n  BASE_LR: 0.1\n")
    _write(tmp_path / "configs" / "sub" / "mid.yaml", "_BASE_: ../Base.yaml\nSEED: 1\n")
    child = _write(tmp_path / "configs" / "sub" / "child.yaml", "_BASE_: mid.yaml\nSEED: 2\n")
    monkeypatch.chdir(tmp_path / "configs")  # not where the files are relative to
    assert load_config_chain(str(child)) == {"SOLVER": {"MAX_ITER": 1, "BASE_LR": 0.1}, "SEED": 2}


def test_home_is_expanded_and_lists_merge_in_order(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    _write(tmp_path / "a.yaml", "SEED: 1\nSOLVER:\n  MAX_ITER: 1\n")
    _write(tmp_path / "b.yaml", "SEED: 2\n")
    child = _write(tmp_path / "d" / "c.yaml", "_BASE_: [~/a.yaml, ../b.yaml]\n")
    assert load_config_chain(str(child)) == {"SEED": 2, "SOLVER": {"MAX_ITER": 1}}


def test_cycles_are_reported(tmp_path):
    a = _write(tmp_path / "a.yaml", "_BASE_: b.yaml\n")
    _write(tmp_path / "b.yaml", "_BASE_: a.yaml\n")
    with pytest.raises(InputError) as info:
        load_config_chain(str(a))
    assert str(info.value) == (
        f"{tmp_path}/b.yaml: _BASE_ a.yaml: _BASE_ cycle ({a} -> {tmp_path}/b.yaml -> {a})"
    )


def test_depth_is_limited(tmp_path):
    for i in range(40):
        _write(tmp_path / f"{i}.yaml", f"_BASE_: {i + 1}.yaml\n")
    _write(tmp_path / "40.yaml", "SEED: 1\n")
    with pytest.raises(InputError, match="_BASE_ chain deeper than 32 files"):
        load_config_chain(str(tmp_path / "0.yaml"))


def test_missing_base_names_its_includer(tmp_path):
    config = _write(tmp_path / "c.yaml", "_BASE_: nope.yaml\n")
    with pytest.raises(InputError) as info:
        load_config_chain(str(config))
    assert (
        str(info.value) == f"config file '{tmp_path}/nope.yaml' not found (the _BASE_ of {config})"
    )


@pytest.mark.parametrize("base", ["3", "{A: 1}", "[a.yaml, 2]", "''"])
def test_base_must_name_files(base, tmp_path):
    config = _write(tmp_path / "c.yaml", f"_BASE_: {base}\n")
    with pytest.raises(InputError, match="_BASE_ must name a config file"):
        load_config_chain(str(config))


def test_mapping_over_a_value_is_refused_as_fvcore_does(tmp_path):
    _write(tmp_path / "base.yaml", "SOLVER: 1\n")
    config = _write(tmp_path / "c.yaml", "_BASE_: base.yaml\nSOLVER:\n  MAX_ITER: 2\n")
    with pytest.raises(InputError, match="SOLVER is a mapping here but a single value"):
        load_config_chain(str(config))


# --- into Detectron2 ---------------------------------------------------------------------------


def test_every_repository_config_merges_as_detectron2_merges_it():
    import glob

    from detectron2.config import get_cfg as detectron2_cfg

    from ovavss_d2 import get_cfg
    from ovavss_d2.baselines.tpavi.config import add_tpavi_config
    from ovavss_d2.config import add_ovavss_config

    repo = Path(__file__).resolve().parents[2]
    files = sorted(glob.glob(str(repo / "configs" / "**" / "*.yaml"), recursive=True))
    assert files
    for path in files:
        ours = get_cfg()
        ours.merge_from_file(path)  # SafeCfgNode: through safe_config
        theirs = detectron2_cfg()
        add_ovavss_config(theirs)
        add_tpavi_config(theirs)
        theirs.merge_from_file(path)  # Detectron2's own reader (trusted files)
        assert ours.dump() == theirs.dump(), path


def test_get_cfg_merge_from_file_refuses_urls(tmp_path, served):
    from ovavss_d2 import get_cfg

    config = _write(tmp_path / "c.yaml", "_BASE_: https://h/base.yaml\n")
    cfg = get_cfg()
    assert type(cfg.MODEL).__name__ == "SafeCfgNode" and type(cfg.clone()) is type(cfg)
    with pytest.raises(InputError, match="remote configs are refused"):
        cfg.merge_from_file(str(config))
    with pytest.raises(InputError, match="remote configs are refused"):
        type(cfg).load_yaml_with_base(str(config), allow_unsafe=True)
    assert served["calls"] == []


@pytest.mark.parametrize(
    "old, new",
    [
        ("MODEL.OPEN_VOCAB.TOP_K", "MODEL.OVAVSS.TEST.TOP_K"),
        ("MODEL.OVAVSS.AUDIO_LABELS.TOP_K", "MODEL.CLASS_SOURCES.AUDIO_TAGS.TOP_K"),
    ],
)
def test_renamed_keys_still_name_their_new_key(old, new, tmp_path):
    from ovavss_d2 import get_cfg

    *path, leaf = old.split(".")
    text = (
        "".join(f"{'  ' * i}{p}:\n" for i, p in enumerate(path)) + f"{'  ' * len(path)}{leaf}: 1\n"
    )
    base = _write(tmp_path / "base.yaml", text)
    config = _write(tmp_path / "c.yaml", f"_BASE_: {base.name}\n")
    with pytest.raises(InputError, match=f"{config}: .*was renamed to.*{new}"):
        merge_config(get_cfg(), str(config), [], "--opts")
    with pytest.raises(InputError, match=f"--opts: Key {old} was renamed to {new}"):
        merge_config(get_cfg(), str(_write(tmp_path / "ok.yaml", "")), [old, "1"], "--opts")
    with pytest.raises(KeyError, match="was renamed to"):
        get_cfg().merge_from_file(str(config))


def test_ints_for_float_keys_through_a_chain(tmp_path):
    from ovavss_d2 import get_cfg

    _write(tmp_path / "base.yaml", "SOLVER:\n  BASE_LR: 1\n")
    config = _write(tmp_path / "c.yaml", "_BASE_: base.yaml\n")
    cfg = get_cfg()
    merge_config(cfg, str(config), [], "--opts")
    assert cfg.SOLVER.BASE_LR == 1.0 and type(cfg.SOLVER.BASE_LR) is float


# --- the download cache ------------------------------------------------------------------------


def test_cache_key_is_the_whole_url(tmp_path):
    urls = [
        "https://a.example/x/base.yaml",
        "https://b.example/x/base.yaml",  # same path, other host: iopath's cache collides
        "https://a.example/y/base.yaml",
        "https://a.example/x/base.yaml?v=2",
        "http://a.example/x/base.yaml",
    ]
    paths = [downloads.cache_path(u, tmp_path) for u in urls]
    assert len(set(paths)) == len(urls)
    assert all(p.name == "base.yaml" and p.parent.parent == tmp_path for p in paths)
    assert downloads.cache_path(urls[0], tmp_path) == paths[0]  # stable
    assert downloads.cache_path("detectron2://m/R-50.pkl", tmp_path) == downloads.cache_path(
        "https://dl.fbaipublicfiles.com/detectron2/m/R-50.pkl", tmp_path
    )
    assert downloads.cache_path("https://h/", tmp_path).name == "download"
    assert downloads.cache_path("https://h/..%2F..%2Fevil", tmp_path).parent.parent == tmp_path


def test_same_file_name_on_two_hosts_gives_two_files(served, tmp_path):
    served["https://a.example/base.yaml"] = b"SEED: 1\n"
    served["https://b.example/base.yaml"] = b"SEED: 2\n"
    a = downloads.download("https://a.example/base.yaml")
    b = downloads.download("https://b.example/base.yaml")
    assert a != b and a.read_bytes() == b"SEED: 1\n" and b.read_bytes() == b"SEED: 2\n"
    assert str(a).startswith(str(tmp_path / "cache" / "downloads"))


def test_a_failed_download_leaves_nothing(served, monkeypatch):
    def broken(url, out, max_bytes):
        out.write(b"half")
        raise OSError("connection reset")

    monkeypatch.setattr(downloads, "_fetch", broken)
    with pytest.raises(downloads.DownloadError, match="download failed .connection reset"):
        downloads.download("https://h/w.pth")
    folder = downloads.cache_path("https://h/w.pth").parent
    assert not any(folder.iterdir())


def test_other_schemes_are_not_downloaded(served):
    with pytest.raises(downloads.DownloadError, match="cannot download s3:// URLs"):
        downloads.download("s3://bucket/w.pth")


def test_checkpointer_reads_weights_urls_through_the_cache(served):
    import io

    import torch
    from torch import nn

    from ovavss_d2.checkpoint import CheckpointError, OVAVSSCheckpointer

    # Two URLs with the same file name: iopath's cache (keyed by the URL's path) would hand the
    # second the first one's file; here each gets its own.
    for host, value in (("a", 1.0), ("b", 2.0)):
        buffer = io.BytesIO()
        state = {"weight": torch.full((2, 2), value), "bias": torch.full((2,), value)}  # not blank
        torch.save({"model": state}, buffer)
        served[f"https://{host}.example/model_final.pth"] = buffer.getvalue()
    for host, value in (("a", 1.0), ("b", 2.0), ("a", 1.0)):
        model = nn.Linear(2, 2)
        OVAVSSCheckpointer(model).load(f"https://{host}.example/model_final.pth")
        assert torch.equal(model.weight.data, torch.full((2, 2), value))
    assert len(served["calls"]) == 2  # the third load came from the cache
    with pytest.raises(CheckpointError, match="https://c.example/m.pth: download failed"):
        OVAVSSCheckpointer(nn.Linear(2, 2)).load("https://c.example/m.pth")
