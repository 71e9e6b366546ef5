"""`swin2sr serve`'s command line: one-line errors before anything loads, and the exposure warning."""

from __future__ import annotations

import logging
import socket
import sys

import pytest

from swin2sr import cli
from swin2sr.serve import command, require


def run(capsys, *args: str) -> tuple[int, str]:
    code = cli.main(["serve", *args])
    return code, capsys.readouterr().err.strip()


def test_a_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # makes `import uvicorn` fail
    with pytest.raises(ValueError, match=r"'uvicorn'.*pip install 'swin2sr-upscaler\[serve\]'"):
        require("fastapi", "uvicorn")


def test_a_taken_port_is_one_line_before_the_model_loads(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code, err = run(capsys, "--port", str(taken.getsockname()[1]), "--device", "cpu")
    assert code == 1 and err.count("\n") == 0
    assert "cannot listen on 127.0.0.1" in err and "--port" in err


@pytest.mark.parametrize(
    ("args", "env", "words"),
    [(["--max-upload-mb", "0"], {}, "--max-upload-mb must be positive"),
     (["--data-dir", "/nonexistent/folder"], {}, "create it first"),
     ([], {"MAX_INPUT_SIZE": "big"}, "MAX_INPUT_SIZE='big' is not an integer"),
     ([], {"FP16_ENABLE": "perhaps"}, "FP16_ENABLE='perhaps' is not a boolean"),
     (["--device", "cuda:7"], {}, "cuda:7")],
)  # fmt: skip
def test_bad_settings_are_one_line(capsys, monkeypatch, args, env, words):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, err = run(capsys, "--device", "cpu", *args)  # a later --device replaces the first
    assert code == 1 and err.count("\n") == 0 and words in err, err


@pytest.mark.parametrize(("host", "warned"), [("127.0.0.1", False), ("::1", False), ("localhost", False),
                                              ("0.0.0.0", True), ("192.168.1.20", True)])  # fmt: skip
def test_listening_beyond_this_machine_warns(caplog, host, warned):
    with caplog.at_level(logging.WARNING, logger="swin2sr"):
        command.warn_if_exposed(host, token=None)
    assert bool(caplog.records) == warned
    if warned:
        assert "set --token" in caplog.text and "HTTPS" in caplog.text


def test_the_core_and_the_command_line_import_without_the_serve_extra():
    """Only swin2sr/serve/app.py needs FastAPI at import; hosts and the other commands never import it."""
    import subprocess

    blocked = "fastapi starlette uvicorn python_multipart multipart prometheus_client".split()
    code = (f"import sys; sys.modules.update(dict.fromkeys({blocked!r}));"
            "import pkgutil, importlib, swin2sr, swin2sr.cli;"
            "[importlib.import_module(m.name) for m in pkgutil.walk_packages(swin2sr.__path__, 'swin2sr.')"
            " if m.name not in ('swin2sr.serve.app', 'swin2sr.__main__')]")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_an_official_model_that_cannot_be_fetched_is_one_line_before_the_server_starts(
    tmp_path, release, monkeypatch, capsys
):
    from swin2sr import catalog

    monkeypatch.setenv(catalog.MODELS_DIR_ENV, str(tmp_path / "models"))
    monkeypatch.setenv("SWIN2SR_OFFLINE", "1")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, err = run(capsys, "--port", str(port), "--model", "classical-x4", "--device", "cpu")
    assert code == 1 and err.count("\n") == 0
    assert "classical-x4 is not downloaded" in err and str(tmp_path / "models") in err
    assert release.requests == []


def test_an_official_model_is_downloaded_with_the_cli_bar_before_the_server_starts(
    tmp_path, release, monkeypatch, capsys
):
    from swin2sr import catalog

    monkeypatch.setenv(catalog.MODELS_DIR_ENV, str(tmp_path / "models"))
    command.fetch_official_models(("builtin-x4", "lightweight-x2"), quiet=False)
    assert "downloading lightweight-x2" in capsys.readouterr().err
    assert (tmp_path / "models" / catalog.find("lightweight-x2").file).is_file()
    assert len(release.requests) == 1  # the embedded model needs none
