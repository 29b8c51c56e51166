"""scripts/env.sh, as the README tells users to source it in their own shell."""

import subprocess

from .conftest import ROOT


def test_sourcing_env_sh_leaves_the_shell_as_it_was(tmp_path):
    script = f"source {ROOT / 'scripts' / 'env.sh'}; false; echo alive; echo $-; pwd; which dvc"
    proc = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    lines = proc.stdout.split()
    assert "alive" in lines, proc.stdout + proc.stderr  # a failing command did not end the shell
    options = lines[lines.index("alive") + 1]
    assert "e" not in options and "u" not in options  # no set -e / set -u leaked
    assert lines[lines.index("alive") + 2] == str(tmp_path)  # still where the user was
    assert lines[-1] == str(ROOT / ".venv" / "bin" / "dvc")  # the project's environment
