"""Measuring a model: retrieval metrics, evaluation of splits and languages, zero-shot, reports, the study."""
