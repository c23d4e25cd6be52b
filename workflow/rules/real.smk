# Real TrackML data: the simulation and the reconstruction held against a real event
# (evaluate.trackml_dir/sample/, evaluate.real_event). Included only when the data exist.
from pathlib import Path

from hepml.evaluate import compare_cli, real_trackml

# residuals.png needs the modules (detectors.csv[.gz] beside sample/)
COMPARE_PLOTS = [p for p in compare_cli.PLOTS if p != "residuals.png" or REAL["detectors"]]


wildcard_constraints:
    method="|".join(REAL_METHODS),


rule compare_real:
    input:
        sim=f"{R}/sim/tracker/shard{TRACKER_TEST[0]}.root",
        real=REAL["files"],
    output:
        metrics=f"{R}/evaluate/compare_real/metrics.json",
        **{
            p.split(".")[0]: report(
                f"{R}/evaluate/compare_real/{p}",
                caption="../report/compare_real.rst",
                category="Simulation against real TrackML",
                labels={"figure": p.split(".")[0]},
            )
            for p in COMPARE_PLOTS
        },
    params:
        out=lambda w, output: str(Path(output.metrics).parent),
        detectors=f"--detectors {REAL['detectors']}" if REAL["detectors"] else "",
    log:
        f"{R}/logs/compare_real.log",
    benchmark:
        f"{R}/benchmarks/compare_real.tsv"
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/hepml.yaml"
    shell:
        THREADS_ENV + f"hepml compare-real --real {REAL['sample']} --event {REAL['event']}"
        " --sim {input.sim} {params.detectors} --out {params.out} > {log} 2>&1"


rule reconstruct_real:
    input:
        config=ancient(CONFIG),
        real=REAL["files"][0],
        model=lambda w: [f"{R}/models/hit_labeller/model.pt"] if w.method == "bigru" else [],
    output:
        f"{R}/evaluate/real_trackml/{{method}}/submission.csv",
    params:
        model=lambda w: f"--model {R}/models/hit_labeller/model.pt" if w.method == "bigru" else "",
        # the finder and the labeller's building, not its training (common.smk)
        cfg=task_sections("hit_labeller", "build"),
    log:
        f"{R}/logs/reconstruct_real/{{method}}.log",
    benchmark:
        f"{R}/benchmarks/reconstruct_real/{{method}}.tsv"
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/hepml.yaml"
    shell:
        THREADS_ENV + f"hepml reconstruct --input {REAL['sample']} --event {REAL['event']}"
        " --config {input.config} --method {wildcards.method} {params.model} --out {output} > {log} 2>&1"


rule real_trackml:
    input:
        config=ancient(CONFIG),
        real=REAL["files"],
        submissions=expand(
            f"{R}/evaluate/real_trackml/{{method}}/submission.csv", method=REAL_METHODS
        ),
        own=f"{R}/evaluate/hit_labeller/metrics.json",
    output:
        metrics=f"{R}/evaluate/real_trackml/metrics.json",
        **{
            p.split(".")[0]: report(
                f"{R}/evaluate/real_trackml/{p}",
                caption="../report/real_trackml.rst",
                category="Real TrackML",
                labels={"figure": p.split(".")[0]},
            )
            for p in real_trackml.PLOTS
        },
    params:
        out=lambda w, output: str(Path(output.metrics).parent),
        submissions=" ".join(
            f"{m}={R}/evaluate/real_trackml/{m}/submission.csv" for m in REAL_METHODS
        ),
        cfg=task_sections("hit_labeller", "evaluate"),
    log:
        f"{R}/logs/real_trackml.log",
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/hepml.yaml"
    shell:
        THREADS_ENV + f"hepml real-trackml --input {REAL['sample']} --event {REAL['event']}"
        " --submission {params.submissions} --config {input.config} --own-sim {input.own}"
        " --out {params.out} > {log} 2>&1"
