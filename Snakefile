# hepml workflow: simulate -> build -> train -> evaluate -> report.
# Wiring only; every step is a `hepml` command you can also run by hand.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/build.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"


if REAL:  # evaluate.trackml_dir/sample exists (else a note, see common.smk)

    include: "workflow/rules/real.smk"


include: "workflow/rules/report.smk"


localrules:
    all,


rule all:
    input:
        f"{R}/report/index.html",
        REAL_METRICS,
        ONNX_MODELS,
