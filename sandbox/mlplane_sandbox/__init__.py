"""The sandbox: the whole control plane on one machine, with moto as AWS. Never deployed to Lambda."""

from mlplane_sandbox import regions as _regions

_regions.install()  # before any of moto's service modules is imported (see regions.py)
