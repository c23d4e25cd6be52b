# Stage 4: evaluation on the test shards, model against its classical baselines.


rule evaluate:
    input:
        config=ancient(CONFIG),
        data=lambda w: task_data(w.task, "test") + task_sim(w.task, "test"),
        model=f"{R}/models/{{task}}/model.pt",
        # the ghost filter also scores the finder's candidates on the real TrackML event
        real=lambda w: REAL["files"] if REAL and w.task == "ghost_filter" else [],
    output:
        metrics=f"{R}/evaluate/{{task}}/metrics.json",
        # in Snakemake's report through report_figures (report.smk), with every other figure
        roc=f"{R}/evaluate/{{task}}/roc.png",
    params:
        model=lambda w: f"{R}/models/{w.task}",
        out=lambda w: f"{R}/evaluate/{w.task}",
        cfg=lambda w: task_sections(w.task, "evaluate"),
        real=lambda w: f" {REAL['sample']}/{REAL['event']}" if REAL and w.task == "ghost_filter" else "",
    log:
        f"{R}/logs/evaluate/{{task}}.log",
    benchmark:
        f"{R}/benchmarks/evaluate/{{task}}.tsv"
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/hepml.yaml"
    shell:
        THREADS_ENV + "hepml evaluate {wildcards.task} --config {input.config} --data {input.data}{params.real}"
        " --model {params.model} --out {params.out} > {log} 2>&1"
