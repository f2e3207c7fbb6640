"""pyproject.toml (ranges), constraints.txt (pins) and environment.yml (conda) agree."""
import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def pyproject_names() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {_name(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        names |= {_name(r) for r in extra}
    return names


def constraint_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: '{line}' is not pinned with =="
            pins[_name(name)] = version
    return pins


def environment_names() -> set[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "python=3.11" in env["dependencies"]
    return {_name(r) for r in pip_section if not r.startswith("-")}


def test_three_files_name_the_same_packages():
    declared = pyproject_names()
    assert environment_names() == declared, (
        f"environment.yml and pyproject.toml differ: "
        f"{sorted(environment_names() ^ declared)}"
    )
    missing = declared - set(constraint_pins())
    assert not missing, f"pinned nowhere in constraints.txt: {sorted(missing)}"


def test_the_torch_pair_is_the_working_one():
    pins = constraint_pins()
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"


def test_book_is_jupyter_book_1():
    assert constraint_pins()["jupyter-book"].startswith("1.")


def test_no_pooch():
    """scikit-image would try to download its data sets through pooch (DESIGN.md)."""
    assert "pooch" not in constraint_pins()


@pytest.mark.pinned_env
def test_installed_versions_match_the_pins():
    import importlib.metadata as md

    pins = constraint_pins()
    for name in sorted(pyproject_names()):
        assert md.version(name) == pins[name], f"{name}: installed {md.version(name)}, pinned {pins[name]}"


def declared_requirements() -> list:
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        lines += extra
    return [Requirement(line) for line in lines]


def test_every_pin_lies_in_its_declared_range():
    pins = constraint_pins()
    for req in declared_requirements():
        version = pins[_name(req.name)]
        assert req.specifier.contains(version, prereleases=True), f"{req}: the pin {version} is outside the range"


def test_a_package_named_twice_has_one_range():
    """ipykernel is in two extras: one cap, or an install of one extra lets the other's bad version in."""
    seen = {}
    for req in declared_requirements():
        seen.setdefault(_name(req.name), set()).add(str(req.specifier))
    twice = {name: specs for name, specs in seen.items() if len(specs) > 1}
    assert not twice, f"packages declared with different ranges: {twice}"


def test_fragile_lower_bounds_are_the_proven_ones():
    """The floors `make floor` installs and tests (README: version ranges)."""
    floors = {_name(r.name): str(r.specifier) for r in declared_requirements()}
    assert floors["open-clip-torch"] == ">=3.0" and floors["diffusers"] == ">=0.29"
    assert floors["torch"] == ">=2.5"


def test_license_is_an_spdx_expression():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT AND CC-BY-4.0" and project["license-files"] == ["LICENSE"]
