"""One dependency list: pyproject.toml. environment.yml (conda users) and workflow/envs/nsr.yaml
(`snakemake --sdm conda`) install Python, the same torch pin as `make setup`, and the package by pip."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
# Where conda resolves each file's relative pip paths: the file's own folder; Snakemake builds
# workflow/envs/nsr.yaml from a copy in <workdir>/.snakemake/conda/.
ENV_FILES = {REPO / "environment.yml": REPO, REPO / "workflow" / "envs" / "nsr.yaml": REPO / ".snakemake" / "conda"}


def pip_section(env: dict) -> list[str]:
    sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    assert len(sections) == 1
    return sections[0]


def test_env_files_install_the_package_and_only_the_torch_pin():
    makefile_torch = re.search(r"pip install --quiet (torch==\S+)", (REPO / "Makefile").read_text()).group(1)
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    torch_range = next(Requirement(d) for d in pyproject["project"]["dependencies"] if d.startswith("torch"))
    conda_deps = []
    for path, pip_cwd in ENV_FILES.items():
        env = yaml.safe_load(path.read_text())
        conda_deps.append([d for d in env["dependencies"] if not isinstance(d, dict)])
        packages = [line for line in pip_section(env) if not line.startswith("--")]  # options such as an index
        editable = [line for line in packages if line.startswith("-e ")]
        assert len(editable) == 1 and (pip_cwd / editable[0][3:]).resolve() == REPO, path
        assert [line for line in packages if line not in editable] == [makefile_torch], path
        assert torch_range.specifier.contains(makefile_torch.split("==")[1]), path
    assert conda_deps[0] == conda_deps[1] == ["python=3.11", "pip"]


def test_environment_yml_takes_the_cpu_build_of_torch():
    options = [line for line in pip_section(yaml.safe_load((REPO / "environment.yml").read_text())) if line.startswith("--")]
    assert options == ["--extra-index-url https://download.pytorch.org/whl/cpu"]
