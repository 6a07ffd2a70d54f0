"""The artifact `make build` (sam build) leaves in .aws-sam/build is what Lambda runs (issue 14 B).

Lambda's limits (Lambda developer guide, "Lambda quotas"): a function's deployment package with all its
layers is at most 250 MB unzipped. The functions run python3.13 on arm64 (template.yaml Globals), so every
compiled module in the layer must be a CPython 3.13 extension for aarch64 Linux (ELF e_machine 183, EM_AARCH64).

The fixture runs `make build` (cached: ~5 s when nothing changed) under a lock, so that the artifact checked
is the one the sources make now, even with pytest-xdist workers; it skips only when no python3.13 exists.
"""

from __future__ import annotations

import fcntl
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlplane.iam.policy import shipped_policy_files
from mlplane.member import PURPOSES
from mlplane_sandbox.template import load_template

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / ".aws-sam" / "build"
TEMPLATE = load_template(ROOT / "template.yaml")
FUNCTIONS = {k: v for k, v in TEMPLATE["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
EM_AARCH64 = 183
# Not deployed: the sandbox and its moto, the operator CLI and its typer/rich, the X-Ray SDK (the services
# trace; mlplane.observability says why).
NOT_DEPLOYED = ("moto", "mlplane_sandbox", "mlplane_cli", "typer", "rich", "responses", "aws_xray_sdk")
THIRD_PARTY = ("pydantic", "pydantic_core", "aws_lambda_powertools", "boto3", "botocore")


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@pytest.fixture(scope="module")
def build() -> Iterator[Path]:
    if subprocess.run(["sh", str(ROOT / "tools" / "python313-dir")], capture_output=True, check=False).returncode:
        pytest.skip("no python3.13 on PATH or under pyenv: sam build cannot build the python3.13 functions")
    lock_path = ROOT / ".aws-sam" / ".build.lock"
    lock_path.parent.mkdir(exist_ok=True)
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        made = subprocess.run(["make", "-s", "build"], cwd=ROOT, capture_output=True, text=True, check=False)
        assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
        yield BUILD


@pytest.fixture(scope="module")
def layer(build: Path) -> Path:
    return build / "MlplaneLayer" / "python"


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_function_is_built_with_its_handler(build: Path, logical_id: str) -> None:
    module, _, function = TEMPLATE["Globals"]["Function"]["Handler"].partition(".")
    app = build / logical_id / f"{module}.py"
    assert app.is_file(), f"{logical_id}: no {module}.py"
    assert re.search(rf"^def {function}\(", app.read_text(encoding="utf-8"), re.MULTILINE)


def test_the_built_template_points_the_functions_at_their_built_code(build: Path) -> None:
    built = load_template(build / "template.yaml")
    for logical_id in FUNCTIONS:
        assert built["Resources"][logical_id]["Properties"]["CodeUri"] == logical_id
    assert built["Resources"]["MlplaneLayer"]["Properties"]["ContentUri"] == "MlplaneLayer"


def test_the_layer_holds_mlplane_with_its_data_files(layer: Path) -> None:
    source = ROOT / "layers" / "mlplane" / "mlplane"
    wanted = {p.relative_to(source) for p in source.rglob("*") if p.suffix in (".py", ".json", ".typed")}
    built = {p.relative_to(layer / "mlplane") for p in (layer / "mlplane").rglob("*") if p.is_file()}
    assert wanted <= built, sorted(str(p) for p in wanted - built)
    policies = {Path("session_policies") / f"{purpose}.json" for purpose in PURPOSES}
    # The further customer policies SaExtraPolicies may name (mlplane/policies/), found where CreateIam reads them.
    extra = {Path("policies") / f"{name}.json" for name in shipped_policy_files()}
    assert extra and {*policies, *extra, Path("iam/aac_ml_sa_policy.json")} <= built


def test_the_layer_holds_its_third_party_packages_for_cp313_aarch64(layer: Path) -> None:
    for package in THIRD_PARTY:
        assert (layer / package / "__init__.py").is_file(), package
    (wheel,) = layer.glob("pydantic_core-*.dist-info/WHEEL")
    tags = [line.split(": ", 1)[1] for line in wheel.read_text().splitlines() if line.startswith("Tag: ")]
    assert tags and all(t.startswith("cp313-cp313-") and t.endswith("_aarch64") for t in tags), tags
    extensions = list(layer.rglob("*.so"))
    assert any(p.parent.name == "pydantic_core" for p in extensions)
    for extension in extensions:
        assert extension.name.endswith(".cpython-313-aarch64-linux-gnu.so"), extension
        header = extension.read_bytes()[:20]
        assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == EM_AARCH64, extension


def test_no_sandbox_cli_or_moto_code_is_deployed(build: Path) -> None:
    found = [
        str(p.relative_to(build))
        for p in build.rglob("*")
        if p.is_dir() and (p.name in NOT_DEPLOYED or p.name.split("-")[0] in NOT_DEPLOYED)
    ]
    assert found == []
    importing = re.compile(r"^\s*(from|import)\s+(moto|mlplane_sandbox|mlplane_cli|typer|rich)\b", re.MULTILINE)
    for source in list(build.glob("*Function/*.py")) + list(
        (build / "MlplaneLayer" / "python" / "mlplane").rglob("*.py")
    ):
        assert not importing.search(source.read_text(encoding="utf-8")), source


def test_every_function_with_its_layer_fits_lambdas_unzipped_limit(build: Path) -> None:
    layer_size = _size(build / "MlplaneLayer")
    sizes = {logical_id: _size(build / logical_id) for logical_id in FUNCTIONS}
    print(f"\nbuilt layer MlplaneLayer: {layer_size / 2**20:.1f} MiB unzipped")
    for logical_id, size in sorted(sizes.items(), key=lambda item: -item[1]):
        print(f"built {logical_id}: {size / 1024:.1f} KiB + layer = {(size + layer_size) / 2**20:.1f} MiB")
    for logical_id, size in sizes.items():
        assert size + layer_size < LAMBDA_UNZIPPED_LIMIT, logical_id


# Run by the functions' python3.13: a pyc is only used by the interpreter whose magic number and source hash
# key it carries.
_BYTECODE_CHECK = """
import importlib.util, sys
from pathlib import Path
bad, good = [], 0
for source in Path(sys.argv[1]).rglob("*.py"):
    cached = Path(importlib.util.cache_from_source(str(source)))
    if not cached.is_file():
        bad.append(f"{source}: no {cached.name}")
        continue
    header = cached.read_bytes()[:16]
    flags = int.from_bytes(header[4:8], "little")
    if header[:4] != importlib.util.MAGIC_NUMBER or flags != 0b11:
        bad.append(f"{source}: {cached.name} is not checked-hash bytecode of this python")
    elif header[8:16] != importlib.util.source_hash(source.read_bytes()):
        bad.append(f"{source}: {cached.name} was compiled from another source")
    else:
        good += 1
print(good)
print("\\n".join(bad[:20]))
"""


def test_the_artifact_ships_bytecode_compiled_from_its_sources(build: Path) -> None:
    """Lambda's /var/task and /opt are read-only: a module without its pyc is compiled again at every cold start
    (botocore's and pydantic's included: their wheels carry no bytecode). Each .py of the artifact has a
    CPython 3.13 pyc in checked-hash mode (used whatever the zip does to mtimes; a stale one is never used)
    whose hash is its source's."""
    found = subprocess.run(["sh", str(ROOT / "tools" / "python313-dir")], capture_output=True, text=True, check=True)
    python = Path(found.stdout.strip()) / "python3.13"
    checked = subprocess.run(
        [str(python), "-c", _BYTECODE_CHECK, str(build)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    good, bad = int(checked[0]), [line for line in checked[1:] if line]
    print(f"\nbytecode: {good} modules compiled (checked-hash, cpython-313)")
    assert bad == [] and good > 500


def test_python313_is_found_under_pyenvs_root_without_pyenv_on_path(tmp_path: Path) -> None:
    """tools/python313-dir with neither python3.13 nor the pyenv command on PATH (a shell given only pyenv's
    shims, or nothing): the versions under pyenv's root ($PYENV_ROOT, else ~/.pyenv) are tried, newest release
    first (3.13.10 before 3.13.9, no release candidate), one that does not run is passed over; none left, it
    prints nothing and exits 1 (make build's one-line error)."""
    tools = tmp_path / "tools"  # PATH: the few commands the script uses, and no python3.13 or pyenv
    home = tmp_path / "home with a space"  # $HOME holds the pyenv root here: its path is quoted throughout
    tools.mkdir()
    for command in ("ls", "sort", "dirname", "grep"):
        real = shutil.which(command)
        assert real is not None, command
        (tools / command).symlink_to(real)
    for version, status in (("3.13.9", 0), ("3.13.10", 0), ("3.13.11", 1), ("3.13.12rc1", 0), ("3.12.9", 0)):
        python = home / ".pyenv" / "versions" / version / "bin" / "python3.13"
        python.parent.mkdir(parents=True)
        python.write_text(f"#!/bin/sh\nexit {status}\n")
        python.chmod(0o755)
    env = {"PATH": str(tools), "HOME": str(home)}  # no PYENV_ROOT: ~/.pyenv
    script = ["/bin/sh", str(ROOT / "tools" / "python313-dir")]
    found = subprocess.run(script, env=env, capture_output=True, text=True, check=False)
    assert (found.returncode, found.stdout.strip()) == (0, str(home / ".pyenv" / "versions" / "3.13.10" / "bin"))
    for runs in ("3.13.9", "3.13.10"):
        shutil.rmtree(home / ".pyenv" / "versions" / runs)
    missing = subprocess.run(script, env=env, capture_output=True, text=True, check=False)
    assert (missing.returncode, missing.stdout) == (1, "")
