# Stage 1: simulation, one job per shard (deterministic given seed and shard).


rule simulate:
    input:
        ancient(CONFIG),
    output:
        f"{R}/sim/{{kind}}/shard{{shard}}.root",
    params:
        # what the shard's simulation reads (not workflow.*_shards: shard K is the same
        # whatever other shards exist)
        cfg=lambda w: sections("seed", w.kind, f"workflow.{w.kind}_{SHARD_UNIT[w.kind]}_per_shard"),
    log:
        f"{R}/logs/simulate/{{kind}}/shard{{shard}}.log",
    benchmark:
        f"{R}/benchmarks/simulate/{{kind}}/shard{{shard}}.tsv"
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../envs/hepml.yaml"
    shell:
        THREADS_ENV + "hepml simulate {wildcards.kind} --config {input} --shard {wildcards.shard}"
        " --out {output} > {log} 2>&1"
