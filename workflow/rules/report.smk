# Stage 5: one HTML page a physicist reads in a browser.


rule report:
    input:
        config=CONFIG,
        # the tasks, then the real-data sections when the data exist (common.smk)
        metrics=expand(f"{R}/evaluate/{{task}}/metrics.json", task=list(TASKS)) + REAL_METRICS,
    output:
        report(
            f"{R}/report/index.html",
            caption="../report/report.rst",
            category="Report",
        ),
    log:
        f"{R}/logs/report.log",
    conda:
        "../envs/hepml.yaml"
    shell:
        THREADS_ENV + "hepml report --config {input.config} --input {input.metrics} --out {output} > {log} 2>&1"
