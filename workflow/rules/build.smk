# Stage 2: per-shard datasets for each task (candidates, roads, calorimeter images).


rule build:
    input:
        config=ancient(CONFIG),
        sim=lambda w: f"{R}/sim/{TASK_SOURCE[w.task]}/shard{w.shard}.root",
    output:
        f"{R}/data/{{task}}/shard{{shard}}.npz",
    params:
        cfg=lambda w: task_sections(w.task, "build"),
    log:
        f"{R}/logs/build/{{task}}/shard{{shard}}.log",
    benchmark:
        f"{R}/benchmarks/build/{{task}}/shard{{shard}}.tsv"
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/hepml.yaml"
    shell:
        THREADS_ENV + "hepml build {wildcards.task} --config {input.config} --input {input.sim}"
        " --out {output} > {log} 2>&1"
