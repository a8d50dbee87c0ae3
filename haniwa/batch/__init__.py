"""Batch inference: JSONL records through a model on the job engine (``base``: the job and the
RecordRunner seam; ``service``: the rows, the work, the output and the manifest)."""
