# Stage 3: training. Asks for training.devices GPUs (SLURM profile), runs on CPU where there
# is none. Checkpoints live beside model.pt and are not outputs: an interrupted job rerun
# with --rerun-incomplete resumes from the last one.
#
# Several devices: without SLURM (or in a one-task SLURM job) Lightning starts the other
# ranks itself by rerunning the command; with `mpi: srun ...` set for `train` in the SLURM
# profile, the job gets --ntasks-per-node=devices and the command runs under that srun, one
# task per GPU (Lightning's SLURMEnvironment), see profiles/slurm/config.yaml.


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
        launch=lambda w, resources: f"{resources.mpi} " if "mpi" in resources.keys() else "",
    threads: lambda w: train_threads(w.task)
    resources:
        gpu=lambda w: train_devices(w.task),
        tasks_per_node=lambda w: train_devices(w.task),
        mem_mb=8000,
        runtime=120,
    conda:
        "../envs/hepml.yaml"
    shell:
        f"{THREADS_ENV}{{params.launch}}hepml train {{wildcards.task}} --config {{input.config}}"
        " --data {input.data}"
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
