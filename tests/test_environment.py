"""pyproject.toml (ranges), constraints.txt (pins) and environment.yml (conda) agree."""
import re
import tomllib
from pathlib import Path

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


def test_installed_versions_match_the_pins():
    import importlib.metadata as md

    pins = constraint_pins()
    for name in sorted(pyproject_names()):
        assert md.version(name) == pins[name], f"{name}: installed {md.version(name)}, pinned {pins[name]}"
