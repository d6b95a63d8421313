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
STAGE_DIR = "hub-staging"  # what `mlilt push` uploads, staged inside the run folder by default
STAGE_MARKER = ".mlilt-stage"  # written into every staging folder: the only kind of folder a push replaces
RUN_LOCK_NAME = ".mlilt-run.lock"  # held (with the writer's pid) while a run writes into its folder
# What a run folder may hold: mlilt adapt's files, mlilt eval's report and charts, a push's staging folder.
RUN_ENTRIES = (
    ADAPTER_WEIGHTS_NAME,
    ADAPTER_CONFIG_NAME,
    RUN_CONFIG_NAME,
    METRICS_NAME,
    STEP_METRICS_NAME,
    CHECKPOINT_NAME,
    SUMMARY_NAME,
    REPORT_NAME,
    REPORT_MD_NAME,
    REFERENCE_DIR,
    HEADS_WARMUP_DIR,
    STAGE_DIR,
    RUN_LOCK_NAME,
)
RUN_ENTRY_SUFFIXES = (".png", ".tmp")  # charts; an atomic write cut short

# Built-in offline towers: names a user can pass to --text / --vision.
OFFLINE_TEXT = "offline:multilingual-e5-small"
OFFLINE_VISION = "offline:efficientnet-lite0"
