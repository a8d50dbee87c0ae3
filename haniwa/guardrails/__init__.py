"""Guardrails behind Bedrock's guardrail API, offline: exact rules (words, PII, regexes, My Number),
MeCab names, and embedding detectors (content filters, prompt attacks, denied topics, contextual
grounding) on the bundled multilingual-e5-small."""
