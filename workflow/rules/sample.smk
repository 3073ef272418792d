rule sample:
    input:
        model=lambda wc: model_files(evaluated_model(wc)),
        data="results/data/test.parquet",
    output:
        "results/samples/{method}/seed{seed}.parquet",
    params:
        model=evaluated_model,
        num_samples=config["sampling"]["num_samples"],
        temperature=config["sampling"]["temperature"],
        top_p=config["sampling"]["top_p"],
        max_new_tokens=config["sampling"]["max_new_tokens"],
        backend=config["sampling"]["backend"],
        problems_per_call=config["sampling"].get("problems_per_call", 1),
        gpus=gpus_per_node("sample"),
        code=code_stamp("sample"),
    log:
        "logs/sample/{method}/seed{seed}.log",
    benchmark:
        "results/benchmarks/sample/{method}/seed{seed}.tsv"
    threads: rule_threads("sample")
    resources:
        **rule_resources("sample"),
    conda:
        "../envs/nsr.yaml"
    shell:
        "nsr gpus --count {params.gpus} --"
        " nsr sample --model {params.model} --dataset-name {input.data} --output {output}"
        " --num-samples {params.num_samples} --temperature {params.temperature} --top-p {params.top_p}"
        " --max-new-tokens {params.max_new_tokens} --backend {params.backend}"
        " --problems-per-call {params.problems_per_call}"
        " --seed {wildcards.seed} --num-threads {threads} > {log} 2>&1"


use rule sample as sample_test_set with:
    input:
        model=lambda wc: model_files(evaluated_model(wc)),
        data="results/test_sets/{testset}/data.parquet",
    output:
        "results/test_sets/{testset}/samples/{method}/seed{seed}.parquet",
    log:
        "logs/test_sets/{testset}/sample/{method}/seed{seed}.log",
    benchmark:
        "results/benchmarks/test_sets/{testset}/sample/{method}/seed{seed}.tsv"
