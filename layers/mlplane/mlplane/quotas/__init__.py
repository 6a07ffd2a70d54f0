"""quotas domain."""
