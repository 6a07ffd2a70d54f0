"""Issue 14: a function's cold start imports the code its step runs, and no other (what `make bench`'s cold-import
table measures). Structural, not timed (a timed test would flake): each handler is imported in a fresh interpreter,
as Lambda does, and the mlplane modules it loaded are compared with what its step uses.

Both ways: the optional modules' code, off by default, and the domains a step never touches are not imported;
what a step runs on every invocation is imported with the function, not left to its first invocation (which a
cold start pays as well).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/app.py"))

OPTIONAL_MODULES = ("mlplane.modules.canvas", "mlplane.modules.service_catalog")
"""Imported when a run uses a module (enabled for the account, or met in the ledger), never with a function."""

NETWORK = ("mlplane.network.undo", "mlplane.network.apply", "mlplane.network.plan")
IAM = ("mlplane.iam.apply", "mlplane.iam.access_key")
KMS = ("mlplane.kms.apply",)
QUOTAS = ("mlplane.quotas.apply",)
DOMAINS = NETWORK + IAM + KMS + QUOTAS
WHOLE_LEDGER = ("mlplane.rollback.registry", "mlplane.rollback.whole")  # every domain's undo handlers
VENDOR_HOLD = ("mlplane.rollback.hold", "mlplane.eks.footprint")
PROVISION_CHECKS = ("mlplane.accounts.validate",)
AUDIT = ("mlplane.accounts.audit", "mlplane.accounts.preview", "mlplane.accounts.reconcile")
DEPROVISION_STEPS = ("mlplane.accounts.deprovision", "mlplane.rollback.run", *WHOLE_LEDGER)
PLANS = (  # each domain's rows of the plan and the audit
    "mlplane.accounts.planned",
    "mlplane.network.apply",
    "mlplane.network.diff",
    "mlplane.iam.apply",
    *KMS,
    *QUOTAS,
)

NOT_IMPORTED: dict[str, tuple[str, ...]] = {
    "start_deprovisioning": (*DOMAINS, *DEPROVISION_STEPS, *PROVISION_CHECKS, *AUDIT, "mlplane.eks.watch"),
    "list_ready_accounts": (*DOMAINS, *WHOLE_LEDGER, *PROVISION_CHECKS, *AUDIT),
    "validate_deprovision": (*DOMAINS, "mlplane.rollback.run", *WHOLE_LEDGER, *PROVISION_CHECKS, *AUDIT),
    "record_rollback_incomplete": (*DOMAINS, *WHOLE_LEDGER, *VENDOR_HOLD),
    "remove_modules": (*DOMAINS, *WHOLE_LEDGER, *VENDOR_HOLD),
    "remove_iam": (*NETWORK, *KMS, *QUOTAS, *WHOLE_LEDGER, *VENDOR_HOLD),
    "remove_network": (*IAM, *KMS, *QUOTAS, *WHOLE_LEDGER, *VENDOR_HOLD),
    "revert_kms_policy": (*NETWORK, *IAM, *QUOTAS, *WHOLE_LEDGER, *VENDOR_HOLD),
    "mark_deprovisioned": (*PROVISION_CHECKS, *AUDIT, "mlplane.accounts.deprovision"),
    "validate_account": (
        *IAM,
        "mlplane.iam.plan",
        "mlplane.network.undo",
        "mlplane.network.apply",
        *KMS,
        *QUOTAS,
        *DEPROVISION_STEPS,
        *AUDIT,
    ),
    "apply_modules": (*DOMAINS, *DEPROVISION_STEPS, *AUDIT),
    "audit_fleet": (*PROVISION_CHECKS, "mlplane.accounts.preview", "mlplane.network.undo", *DEPROVISION_STEPS),
    "reconcile_account": (*PROVISION_CHECKS, "mlplane.accounts.preview", "mlplane.network.undo", *DEPROVISION_STEPS),
}
"""Per handler, library modules its step never uses (on top of OPTIONAL_MODULES, which none imports)."""

IMPORTED: dict[str, tuple[str, ...]] = {
    "validate_account": ("mlplane.accounts.validate", "mlplane.iam.policy", "mlplane.network.plan"),
    "validate_deprovision": ("mlplane.accounts.organization", "mlplane.eks.watch"),
    "rollback": ("mlplane.network.undo", *IAM, *KMS, *QUOTAS, *WHOLE_LEDGER, *VENDOR_HOLD),
    "mark_deprovisioned": ("mlplane.network.undo", *IAM, *KMS, *QUOTAS, *WHOLE_LEDGER),
    "remove_iam": IAM,
    "remove_network": ("mlplane.network.undo",),
    "revert_kms_policy": KMS,
    "remove_modules": ("mlplane.rollback.run",),
    "record_rollback_incomplete": ("mlplane.rollback.run",),
    "audit_fleet": ("mlplane.accounts.audit", *PLANS, "mlplane.eks.footprint"),
    "reconcile_account": ("mlplane.accounts.reconcile", *PLANS, "mlplane.eks.footprint"),
}
"""Per handler, what its step runs on every invocation (the domains it walks, plans or checks)."""

_PROBE = (  # a finder ahead of all others sees each import as it begins (sys.modules is kept in order of ends)
    "import importlib, json, sys\n"
    "began = []\n"
    "class Log:\n"
    "    @staticmethod\n"
    "    def find_spec(name, path=None, target=None):\n"
    "        began.append(name)\n"
    "sys.meta_path.insert(0, Log)\n"
    "importlib.import_module(sys.argv[1])\n"
    "print(json.dumps([m for m in began if m in sys.modules]))\n"
)


def _loaded_by(name: str) -> list[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "layers" / "mlplane")]),
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    command = [sys.executable, "-c", _PROBE, f"functions.{name}.app"]
    done = subprocess.run(command, check=False, capture_output=True, text=True, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def imported_in_order() -> dict[str, list[str]]:
    """Every module each handler's import loads, in the order their imports began, one fresh interpreter per
    handler."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(HANDLERS, pool.map(_loaded_by, HANDLERS), strict=True))


@pytest.fixture(scope="module")
def loaded(imported_in_order: dict[str, list[str]]) -> dict[str, set[str]]:
    """The mlplane modules each handler's import loads."""
    return {name: {m for m in modules if m.split(".")[0] == "mlplane"} for name, modules in imported_in_order.items()}


@pytest.mark.parametrize("name", HANDLERS)
def test_no_function_imports_an_optional_module_s_code(name: str, loaded: dict[str, set[str]]) -> None:
    assert sorted(m for m in loaded[name] if m.startswith(OPTIONAL_MODULES)) == []


@pytest.mark.parametrize("name", sorted(NOT_IMPORTED))
def test_a_function_imports_no_code_its_step_never_uses(name: str, loaded: dict[str, set[str]]) -> None:
    assert sorted(loaded[name] & set(NOT_IMPORTED[name])) == []


@pytest.mark.parametrize("name", sorted(IMPORTED))
def test_what_a_step_runs_every_time_is_imported_with_its_function(name: str, loaded: dict[str, set[str]]) -> None:
    assert sorted(set(IMPORTED[name]) - loaded[name]) == []


@pytest.mark.parametrize("name", HANDLERS)
def test_a_function_imports_boto3_first_from_its_own_module(name: str, imported_in_order: dict[str, list[str]]) -> None:
    """boto3's imports nest about a hundred frames deep. CPython keeps frames in 16 KiB chunks and frees a chunk
    as soon as the stack falls back out of it, so begun a few imports down (the handler, then mlplane's modules),
    the regexes urllib3 compiles at import cross a chunk's end hundreds to thousands of times, each an mmap and
    an munmap (README, "Cold import"). Begun from the handler's own module, before any other package's import."""
    packages = [m for m in imported_in_order[name] if m.split(".")[0] not in {*sys.stdlib_module_names, "functions"}]
    assert packages[:1] == ["boto3"]


def test_the_tables_name_functions_and_modules_that_exist() -> None:
    assert set(NOT_IMPORTED) | set(IMPORTED) <= set(HANDLERS)
    library = ROOT / "layers" / "mlplane"
    named = {m for table in (NOT_IMPORTED, IMPORTED) for modules in table.values() for m in modules}
    for module in sorted(named | set(OPTIONAL_MODULES)):
        path = library / module.replace(".", "/")
        assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), module
