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
    for _f in workflow.configfiles:  # Snakemake's own reader lets a duplicate key pass
        hepml_config.read_file(_f)
    # nested --config values arrive as strings ('3'): parsed where the schema wants a number
    _validated = hepml_config.validate(
        config,
        source=", ".join(str(f) for f in workflow.configfiles) or "config",
        parse_strings=True,
    )
except HepmlError as _exc:
    print(f"hepml: error: {_exc}", file=sys.stderr)
    sys.exit(2)
config.clear()
config.update(_validated)

R = config["workflow"]["results"]
# Every rule reads the resolved config from this file, so a rule run by hand,
# on a SLURM node or by Snakemake sees the same values (command-line --config
# overrides included). Rewritten only when its content changes, and never by a
# dry run (-n) once it exists. Rules take it as ancient(CONFIG): its time stamp
# triggers nothing; each rule's `params: cfg=sections(...)` carries the config
# sections it reads, so Snakemake's params rerun trigger reruns exactly the
# jobs whose sections changed (tests/test_workflow_params.py).
CONFIG = f"{R}/config.resolved.yaml"


def _plans_only():
    """A dry run, lint or report: nothing is written (at parse time Snakemake has not yet
    set workflow.dryrun, so its command line is read)."""
    flags = {"--dry-run", "--dryrun", "--lint", "--report", "--summary", "--detailed-summary"}
    short = [a for a in sys.argv[1:] if a.startswith("-") and not a.startswith("--")]
    return workflow.dryrun or bool(flags & set(sys.argv)) or any("n" in a[1:] for a in short)


def _write_resolved_config():
    from pathlib import Path

    text = hepml_config.dump(config)
    p = Path(CONFIG)
    if p.is_file() and (_plans_only() or p.read_text() == text):
        return
    atomic_write_text(p, text)


_write_resolved_config()


def sections(*keys, drop=()):
    """The config values a rule reads, by dotted key ("seed", "tracker", "workflow.val_fraction"),
    less the dotted keys in ``drop``: a rule's `params: cfg`, so that only a change of
    these reruns it."""
    import copy

    out = {}
    for key in keys:
        node = config
        for part in key.split("."):
            node = node[part]
        out[key] = copy.deepcopy(node)
    for key in drop:  # each starts with one of `keys`: "hit_labeller.train"
        for k in [k for k in out if key.startswith(f"{k}.")]:
            node, parts = out[k], key[len(k) + 1 :].split(".")
            for part in parts[:-1]:
                node = node[part]
            node.pop(parts[-1], None)
    return out


# the track finder (seeding, roads, follower, truth matching) that the tracker tasks'
# datasets and reconstructions use: everything of the two sections but their
# networks, training and baselines
FINDER = ("ghost_filter", "hit_labeller")
FINDER_DROP = (
    "ghost_filter.model",
    "ghost_filter.train",
    "ghost_filter.baselines",
    "hit_labeller.model",
    "hit_labeller.train",
    "hit_labeller.max_train_roads",
)

TRACKER_TRAIN, TRACKER_TEST = split_shards(
    config["workflow"]["tracker_shards"], config["workflow"]["test_fraction"]
)
CALO_TRAIN, CALO_TEST = split_shards(
    config["workflow"]["calo_shards"], config["workflow"]["test_fraction"]
)
# which simulation feeds which task
SHARD_UNIT = {"tracker": "events", "calo": "showers"}
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


def train_devices(task):
    """The task's data-parallel processes (its `train.devices`, else `training.devices`): the
    train job's GPUs and, under SLURM with `mpi` set (profiles/slurm), its tasks per node."""
    own = (config[task].get("train") or {}).get("devices")
    return int(own if own is not None else config["training"]["devices"])


def task_sections(task, stage):
    """The config a task's `stage` (build, train, evaluate) reads; see :func:`sections`."""
    src = TASK_SOURCE[task]
    if stage == "build":
        keys = ("seed", src) + (FINDER if src == "tracker" else (task,))
        return sections(*keys, drop=FINDER_DROP if src == "tracker" else ())
    if stage == "train":
        return sections("seed", "training", "workflow.val_fraction", task)
    # evaluate: the finder again (whole events rebuilt) and the task's own section whole
    keys = ("seed", "evaluate", "training", src) + (FINDER if src == "tracker" else ())
    out = sections(*keys, drop=FINDER_DROP if src == "tracker" else ())
    out.update(sections(task))
    return out


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


def figure_captions(metrics_json):
    """``{file.png: caption}`` of a task's metrics.json (its "plots" block; roc.png always)."""
    import json

    with open(metrics_json) as f:
        plots = json.load(f).get("plots") or {}
    return {"roc.png": "ROC curves", **plots}


def figure_path(metrics_json, name):
    """The file ``name`` beside a task's metrics.json."""
    from pathlib import Path

    return str(Path(metrics_json).parent / name)
