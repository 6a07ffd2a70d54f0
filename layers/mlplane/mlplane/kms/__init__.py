"""kms domain."""
