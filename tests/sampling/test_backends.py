"""nsr.sampling.backends: backend resolution (a missing vllm is one clear error)."""

from __future__ import annotations

import pytest

from nsr.cli import main as cli_main
from nsr.io import InputError
from nsr.sampling import backends, sample_to_file


def test_vllm_backend_without_vllm_is_a_clear_error(model_dir, problems, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(backends, "_vllm_importable", lambda: False)
    with pytest.raises(InputError, match="vllm"):
        sample_to_file(model_dir, problems, tmp_path / "v.parquet", backend="vllm", progress=False)
    assert backends.resolve_backend("auto") == "hf"
    with pytest.raises(SystemExit) as exc:
        cli_main(["sample", "--model", str(model_dir), "--output", str(tmp_path / "v.parquet"), "--backend", "vllm"])
    assert exc.value.code == 2
    assert "vllm package is not installed" in capsys.readouterr().err
    assert not (tmp_path / "v.parquet").exists()
