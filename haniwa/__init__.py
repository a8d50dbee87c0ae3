"""haniwa: self-hosted Amazon Bedrock over local open models."""

__version__ = "0.1.0"
