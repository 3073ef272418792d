rule subset:
    input:
        exclude=subset_exclusions,
    output:
        "results/data/{split}.parquet",
    params:
        args=primary_subset_args,
        exclude=lambda wc, input: f"--exclude {' '.join(input.exclude)}" if input.exclude else "",
        seed=config["data"]["seed"],
        code=code_stamp("subset", task_module(config["data"]["dataset"])),
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
        "nsr subset {params.args} --seed {params.seed} {params.exclude} --output {output} > {log} 2>&1"


use rule subset as subset_test_set with:
    input:
        exclude=["results/data/train.parquet"],
    output:
        "results/test_sets/{testset}/data.parquet",
    params:
        args=test_set_subset_args,
        code=lambda wc: code_stamp("subset", task_module(test_set_dataset(wc.testset))),
    log:
        "logs/test_sets/{testset}/subset.log",
    benchmark:
        "results/benchmarks/test_sets/{testset}/subset.tsv"
