rule subset:
    output:
        "results/data/{split}.parquet",
    params:
        dataset=config["data"]["dataset"],
        size=lambda wc: config["data"][f"{wc.split}_size"],
        seed=config["data"]["seed"],
        options=" ".join(f"--option '{k}={v}'" for k, v in sorted(config["data"].get("options", {}).items())),
        code=code_stamp("subset"),
    log:
        "logs/subset/{split}.log",
    benchmark:
        "results/benchmarks/subset/{split}.tsv"
    threads: rule_threads("subset")
    resources:
        **rule_resources("subset"),
    conda:
        "../envs/nsr.yaml"
    shell:
        "nsr subset --dataset-name {params.dataset} --split {wildcards.split}"
        " --subset-size {params.size} --seed {params.seed} {params.options} --output {output} > {log} 2>&1"
