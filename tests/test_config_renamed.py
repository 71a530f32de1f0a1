"""The config keys of version 0.1 that moved: each fails with a message naming its new key, as a
``KEY VALUE`` override and in a YAML file."""

import pytest
from detectron2.config import get_cfg

from ovavss_d2 import add_ovavss_config
from ovavss_d2.config_renamed import RENAMED_KEYS


def _fresh_cfg():
    c = get_cfg()
    add_ovavss_config(c)
    return c


@pytest.mark.parametrize("old", sorted(RENAMED_KEYS))
def test_old_keys_name_their_new_key(old, tmp_path):
    new = RENAMED_KEYS[old]
    new = new if isinstance(new, str) else new[0]
    with pytest.raises(KeyError, match=f"{old} was renamed to {new}"):
        _fresh_cfg().merge_from_list([old, "1"])
    # In a YAML file yacs stops at the first level that is gone (MODEL.OPEN_VOCAB): its note lists
    # the new key of every leaf.
    *path, leaf = old.split(".")
    text = (
        "".join(f"{'  ' * i}{p}:\n" for i, p in enumerate(path)) + f"{'  ' * len(path)}{leaf}: 1\n"
    )
    (tmp_path / "old.yaml").write_text(text)
    with pytest.raises(KeyError, match="was renamed to") as info:
        _fresh_cfg().merge_from_file(str(tmp_path / "old.yaml"))
    assert new in str(info.value)
