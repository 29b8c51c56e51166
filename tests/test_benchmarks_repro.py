"""benchmarks/repro_time.py: the environment a fresh clone's `dvc repro` runs in."""

from pathlib import Path

from benchmarks import repro_time


def test_env_exports_are_read_from_the_script():
    script = 'export PATH="$ROOT/.venv/bin:$PATH"\nexport DVC_SITE_CACHE_DIR="$ROOT/.dvc/x"\n'
    script += "  export OMP_WAIT_POLICY=PASSIVE\necho export NOT=this\n"
    env = repro_time.parse_env_exports(script, Path("/clone"))
    assert env == {"DVC_SITE_CACHE_DIR": "/clone/.dvc/x", "OMP_WAIT_POLICY": "PASSIVE"}


def test_the_clone_runs_its_own_code_with_this_environment(tmp_path, monkeypatch):
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "env.sh").write_text('export DVC_SITE_CACHE_DIR="$ROOT/.dvc/x"\n')
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")
    env = repro_time.repro_env(tmp_path)
    assert env["PYTHONPATH"] == str(tmp_path) and "MLFLOW_TRACKING_URI" not in env
    assert env["DVC_SITE_CACHE_DIR"] == f"{tmp_path}/.dvc/x"
