"""M2: self-service SageMaker notebook instances through Service Catalog (seed 003)."""
