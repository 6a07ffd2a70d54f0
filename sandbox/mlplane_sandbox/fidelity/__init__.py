"""Fidelity rules: where the sandbox refuses a call as AWS would and moto does not."""
