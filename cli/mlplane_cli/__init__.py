"""The operator CLI: `mlplane local run` (the sandbox), `mlplane demo`, `mlplane plan`, and AWS operations."""
