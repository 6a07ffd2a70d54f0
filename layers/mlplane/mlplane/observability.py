"""The Powertools singletons shared by handlers and library.

Service name and metrics namespace come from POWERTOOLS_* in template.yaml Globals; nothing here reads them.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()
