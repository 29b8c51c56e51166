import pytest

from pipeline.files import atomic_path, write_json


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "out" / "metrics.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half-writ")
            raise RuntimeError("interrupted")
    assert target.read_text().startswith("{")
    assert sorted(p.name for p in target.parent.iterdir()) == ["metrics.json"]


def test_temporary_name_keeps_the_suffix(tmp_path):
    with atomic_path(tmp_path / "train.npz") as tmp:
        assert tmp.suffix == ".npz" and tmp.parent == tmp_path
        tmp.write_bytes(b"x")
    assert (tmp_path / "train.npz").read_bytes() == b"x"
