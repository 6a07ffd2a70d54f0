"""The sandbox: the whole control plane on one machine, with moto as AWS. Never deployed to Lambda."""
