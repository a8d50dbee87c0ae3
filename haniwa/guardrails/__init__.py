"""Guardrails: exact, offline rule detectors (words, sensitive information) behind Bedrock's guardrail API."""
