"""Evaluation: Japanese-aware metrics, perturbations, judges and the evaluation jobs that run them."""
