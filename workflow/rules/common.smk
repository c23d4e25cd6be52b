# Validation and shard bookkeeping shared by every rule file.
import sys

from hepml import config as hepml_config
from hepml.errors import HepmlError
from hepml.io import atomic_write_text
from hepml.tasks import TASKS
from hepml.workflow import split_shards

# Validate at load (schema: workflow/schemas/config.schema.yaml), fill defaults,
# and stop with one line naming the key on a mistake.
try:
    _validated = hepml_config.validate(
        config, source=", ".join(str(f) for f in workflow.configfiles) or "config"
    )
except HepmlError as _exc:
    sys.exit(f"hepml: error: {_exc}")
config.clear()
config.update(_validated)

R = config["workflow"]["results"]
# Every rule reads the resolved config from this file, so a rule run by hand,
# on a SLURM node or by Snakemake sees the same values (command-line --config
# overrides included). Rewritten only when its content changes.
CONFIG = f"{R}/config.resolved.yaml"


def _write_resolved_config():
    from pathlib import Path

    text = hepml_config.dump(config)
    p = Path(CONFIG)
    if not p.is_file() or p.read_text() != text:
        atomic_write_text(p, text)


_write_resolved_config()

TRACKER_TRAIN, TRACKER_TEST = split_shards(
    config["workflow"]["tracker_shards"], config["workflow"]["test_fraction"]
)
CALO_TRAIN, CALO_TEST = split_shards(
    config["workflow"]["calo_shards"], config["workflow"]["test_fraction"]
)
# which simulation feeds which task
TASK_SOURCE = {
    "ghost_filter": "tracker",
    "hit_labeller": "tracker",
    "calo_classifier": "calo",
}
TASK_SHARDS = {
    "tracker": (TRACKER_TRAIN, TRACKER_TEST),
    "calo": (CALO_TRAIN, CALO_TEST),
}


# Each job uses as many threads as Snakemake gave it: torch's and BLAS's thread
# pools otherwise take every core and, beside other jobs, oversubscribe them.
THREADS_ENV = "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads} "


wildcard_constraints:
    task="|".join(TASKS),
    kind="tracker|calo",
    shard=r"\d+",


def train_threads(task):
    """The task's trainer thread count (its `train.threads`, else `training.threads`); 0 -> 2."""
    own = (config[task].get("train") or {}).get("threads")
    return int(own if own is not None else config["training"]["threads"]) or 2


def task_data(task, split):
    train, test = TASK_SHARDS[TASK_SOURCE[task]]
    shards = train if split == "train" else test
    return [f"{R}/data/{task}/shard{k}.npz" for k in shards]


def task_sim(task, split):
    src = TASK_SOURCE[task]
    train, test = TASK_SHARDS[src]
    shards = train if split == "train" else test
    return [f"{R}/sim/{src}/shard{k}.root" for k in shards]
