# Stage 5: one HTML page a physicist reads in a browser, and the figures of
# Snakemake's own report (`snakemake --report report.zip`).


rule report_figures:
    """Every figure a task's metrics.json lists (ROC, efficiencies, ...), gathered for
    `snakemake --report` with the caption metrics.json gives it."""
    input:
        metrics=f"{R}/evaluate/{{task}}/metrics.json",
    output:
        report(
            directory(f"{R}/report/figures/{{task}}"),
            patterns=["{figure}.png"],
            caption="../report/figure.rst",
            category="Tasks",
            subcategory="{task}",
            labels={"task": "{task}", "figure": "{figure}"},
        ),
    params:
        # derived from the input (read when the job runs and when the report is made)
        captions=lambda w, input: figure_captions(input.metrics),
        files=lambda w, input: " ".join(
            figure_path(input.metrics, name) for name in figure_captions(input.metrics)
        ),
    log:
        f"{R}/logs/report_figures/{{task}}.log",
    localrule: True
    conda:
        "../envs/hepml.yaml"
    shell:
        "mkdir -p {output} && cp -p {params.files} {output}/ > {log} 2>&1"


rule report:
    input:
        config=ancient(CONFIG),
        # the tasks, then the real-data sections when the data exist (common.smk)
        metrics=expand(f"{R}/evaluate/{{task}}/metrics.json", task=list(TASKS)) + REAL_METRICS,
        figures=expand(f"{R}/report/figures/{{task}}", task=list(TASKS)),
    output:
        report(
            f"{R}/report/index.html",
            caption="../report/report.rst",
            category="Report",
        ),
    params:
        # the page shows the whole resolved config
        cfg=sections(*config),
    log:
        f"{R}/logs/report.log",
    conda:
        "../envs/hepml.yaml"
    shell:
        THREADS_ENV + "hepml report --config {input.config} --input {input.metrics} --out {output} > {log} 2>&1"
