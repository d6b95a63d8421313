"""Adapters on disk and on the Hugging Face Hub: adapter files, loading, pushing, model cards and export."""
