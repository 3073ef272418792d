rule train:
    input:
        model=lambda wc: model_files(start_model(wc)),
        data="results/data/train.parquet",
        eval_data=eval_data,
    output:
        directory("results/models/{method}/seed{seed}"),
    params:
        model=start_model,
        args=train_args,
        accelerate_config=accelerate_config,
        gpus=gpus_per_node("train"),
        nodes=nodes("train"),
        code=code_stamp("train"),
    log:
        "logs/train/{method}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train/{method}/seed{seed}.tsv"
    threads: rule_threads("train")
    resources:
        **rule_resources("train"),
    conda:
        "../envs/nsr.yaml"
    shell:
        "nsr gpus --count {params.gpus} --"
        " nsr launch --config-file {params.accelerate_config} --gpus {params.gpus} --nodes {params.nodes} --"
        " -m nsr train --model {params.model} --dataset-name {input.data} --seed {wildcards.seed}"
        " {params.args} --num-threads {threads} --resume --output-dir {output} > {log} 2>&1"
