# Stage 1: simulation, one job per shard (deterministic given seed and shard).


rule simulate:
    input:
        CONFIG,
    output:
        f"{R}/sim/{{kind}}/shard{{shard}}.root",
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
