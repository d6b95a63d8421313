"""File names and fixed identifiers used across mlilt (one place, as peft's ``utils/constants.py``)."""

ADAPTER_WEIGHTS_NAME = "adapter_model.safetensors"
ADAPTER_CONFIG_NAME = "adapter_config.json"
RUN_CONFIG_NAME = "run_config.json"
METRICS_NAME = "metrics.json"
STEP_METRICS_NAME = "metrics.jsonl"
CHECKPOINT_NAME = "checkpoint.safetensors"
SUMMARY_NAME = "summary.txt"
REPORT_NAME = "report.json"
REPORT_MD_NAME = "report.md"
STUDY_NAME = "study.json"
REFERENCE_DIR = "reference-frozen"  # the frozen (heads-only) reference model inside a run folder
HEADS_WARMUP_DIR = "heads-warmup"  # the heads-only warm-up the method starts from

# Built-in offline towers: names a user can pass to --text / --vision.
OFFLINE_TEXT = "offline:multilingual-e5-small"
OFFLINE_VISION = "offline:efficientnet-lite0"
