# Stage 3: training. Asks for a GPU (SLURM profile), runs on CPU where there is none.
# Checkpoints live beside model.pt and are not outputs: an interrupted job rerun
# with --rerun-incomplete resumes from the last one.


rule train:
    input:
        config=ancient(CONFIG),
        data=lambda w: task_data(w.task, "train"),
    output:
        f"{R}/models/{{task}}/model.pt",
    log:
        f"{R}/logs/train/{{task}}.log",
    benchmark:
        f"{R}/benchmarks/train/{{task}}.tsv"
    params:
        out=lambda w: f"{R}/models/{w.task}",
        cfg=lambda w: task_sections(w.task, "train"),
    threads: lambda w: train_threads(w.task)
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=120,
    conda:
        "../envs/hepml.yaml"
    shell:
        f"{THREADS_ENV}hepml train {{wildcards.task}} --config {{input.config}} --data {{input.data}}"
        " --out {params.out} > {log} 2>&1"


# The trained model as an ONNX graph for onnxruntime (ACTS, Athena, CMSSW):
# `hepml export` checks that onnxruntime reproduces torch within 1e-5 before it writes.
rule export_onnx:
    input:
        f"{R}/models/{{task}}/model.pt",
    output:
        f"{R}/models/{{task}}/model.onnx",
    params:
        model=lambda w: f"{R}/models/{w.task}",
    log:
        f"{R}/logs/export/{{task}}.log",
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/hepml.yaml"
    shell:
        "OMP_NUM_THREADS={threads} hepml export {wildcards.task} --model {params.model}"
        " --out {output} > {log} 2>&1"


ONNX_MODELS = expand(f"{R}/models/{{task}}/model.onnx", task=list(TASKS))
