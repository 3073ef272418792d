rule base:
    output:
        directory("results/models/base"),
    params:
        model=config["base"]["model"],
        seed=config["base"]["seed"],
        warmstart=warmstart_args(),
        code=code_stamp("base"),
    log:
        "logs/base/base.log",
    benchmark:
        "results/benchmarks/base/base.tsv"
    threads: rule_threads("base")
    resources:
        **rule_resources("base"),
    conda:
        "../envs/nsr.yaml"
    shell:
        "nsr base --model {params.model} --seed {params.seed} {params.warmstart}"
        " --num-threads {threads} --output-dir {output} > {log} 2>&1"
