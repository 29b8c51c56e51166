import pytest

from pipeline.errors import fail, is_ours, one_line
from pipeline.files import LockTimeout
from pipeline.spectra_io import SpectrumFileError


def test_our_errors_give_their_own_message():
    exc = SpectrumFileError("/data/run 1/a.txt", "empty file")
    assert is_ours(exc)
    assert one_line(exc) == "/data/run 1/a.txt: empty file"  # the user's path, kept


def test_other_errors_give_type_and_first_line_without_server_paths():
    exc = RuntimeError("Load model from /srv/models/resunet.onnx failed\nTraceback (most recent")
    assert not is_ours(exc)
    assert one_line(exc) == "RuntimeError: Load model from resunet.onnx failed"
    missing = FileNotFoundError(2, "No such file or directory", "/srv/x/y.onnx")
    assert one_line(missing) == "FileNotFoundError: [Errno 2] No such file or directory: 'y.onnx'"
    assert one_line(ValueError("see http://host/a/b")) == "ValueError: see http://host/a/b"
    assert one_line(KeyError()) == "KeyError"
    assert one_line(ValueError("\n\n  second line first\n")) == "ValueError: second line first"


def test_a_lock_timeout_is_ours_and_names_the_lock(tmp_path):
    exc = LockTimeout(tmp_path / "mlflow.db.lock", "register (pid 7)", 10)
    assert one_line(exc) == f"{tmp_path}/mlflow.db.lock is locked, held by register (pid 7); " + (
        "gave up after waiting 10 s"
    )


def test_fail_prints_one_line_and_returns_the_status(capsys):
    assert fail("correct", OSError("disk full")) == 1
    assert capsys.readouterr().err == "raman-baseline correct: OSError: disk full\n"
    assert fail("train", KeyboardInterrupt()) == 130
    assert capsys.readouterr().err == "raman-baseline train: interrupted (Ctrl-C)\n"
    assert fail("correct-map", KeyboardInterrupt("3 of 8 chunks done")) == 130
    assert (
        capsys.readouterr().err
        == "raman-baseline correct-map: interrupted (Ctrl-C): 3 of 8 chunks done\n"
    )


@pytest.mark.parametrize("message", ["", "   "])
def test_an_empty_message_gives_the_type(message):
    assert one_line(RuntimeError(message)) == "RuntimeError"
