"""Operations moto lacks, answered by the sandbox with the shapes and errors of botocore's service models.

Importing a module here registers its `@emulate` operations with `mlplane_sandbox.rules`.
"""

from mlplane_sandbox.emulators import service_catalog, service_quotas

__all__ = ["service_catalog", "service_quotas"]
