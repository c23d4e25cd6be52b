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


# Real TrackML data (evaluate.trackml_dir, evaluate.real_event): the compare_real and
# real_trackml rules run only when its sample/ folder exists. Without it the workflow
# still runs, with a one-line note; a named event that the folder lacks is an error.
def _real_data():
    from pathlib import Path

    from hepml.evaluate.compare_cli import default_detectors
    from hepml.io import trackml_file

    ev = config["evaluate"]
    # `snakemake --config evaluate='{trackml_dir: null}'` passes the string 'null'
    # (nested --config values arrive as strings), so that and '' also mean null
    if ev.get("trackml_dir") is None or str(ev["trackml_dir"]).strip() in ("", "null", "~"):
        print(
            "hepml: note: evaluate.trackml_dir is null: the real TrackML sections "
            "(compare_real, real_trackml) are left out",
            file=sys.stderr,
        )
        return None
    sample = Path(str(ev["trackml_dir"])) / "sample"
    if not sample.is_dir():
        print(
            f"hepml: note: no real TrackML data ('{sample}' does not exist; evaluate.trackml_dir): "
            "the real TrackML sections (compare_real, real_trackml) are left out",
            file=sys.stderr,
        )
        return None
    event = ev["real_event"]
    files = {kind: trackml_file(sample, event, kind) for kind in ("hits", "truth", "particles")}
    missing = [k for k, p in files.items() if not p.is_file()]
    if missing:
        sys.exit(
            f"hepml: error: evaluate.real_event: '{sample}' has no {event}-{missing[0]}.csv[.gz]"
        )
    return {
        "sample": str(sample),
        "event": event,
        "files": [str(p) for p in files.values()],
        "detectors": default_detectors(sample),
    }


REAL = _real_data()
# the hit labeller's two methods, reconstructed on the real event
REAL_METHODS = ("bigru", "road_follower")
REAL_METRICS = (
    [f"{R}/evaluate/compare_real/metrics.json", f"{R}/evaluate/real_trackml/metrics.json"]
    if REAL
    else []
)
