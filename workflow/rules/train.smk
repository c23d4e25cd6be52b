# Stage 3: training. Asks for a GPU (SLURM profile), runs on CPU where there is none.
# Checkpoints live beside model.pt and are not outputs: an interrupted job rerun
# with --rerun-incomplete resumes from the last one.


rule train:
    input:
        config=CONFIG,
        data=lambda w: task_data(w.task, "train"),
    output:
        f"{R}/models/{{task}}/model.pt",
    log:
        f"{R}/logs/train/{{task}}.log",
    benchmark:
        f"{R}/benchmarks/train/{{task}}.tsv"
    params:
        out=lambda w: f"{R}/models/{w.task}",
    threads: lambda w: train_threads(w.task)
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=120,
    conda:
        "../envs/hepml.yaml"
    shell:
        THREADS_ENV + "hepml train {wildcards.task} --config {input.config} --data {input.data}"
        " --out {params.out} > {log} 2>&1"
