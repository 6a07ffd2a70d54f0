"""mlplane: prepares vended AWS accounts for the AAC Machine Learning private data plane."""

__version__ = "0.1.0"
