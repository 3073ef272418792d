rule passk:
    input:
        "results/samples/{method}/seed{seed}.parquet",
    output:
        "results/pass_at_k/{method}/seed{seed}.json",
    params:
        num_bootstrap=config["evaluation"]["num_bootstrap"],
        code=code_stamp("passk"),
    log:
        "logs/passk/{method}/seed{seed}.log",
    benchmark:
        "results/benchmarks/passk/{method}/seed{seed}.tsv"
    threads: rule_threads("passk")
    resources:
        **rule_resources("passk"),
    conda:
        "../envs/nsr.yaml"
    shell:
        "nsr passk --samples {input} --method {wildcards.method} --seed {wildcards.seed}"
        " --num-bootstrap {params.num_bootstrap} --output {output} > {log} 2>&1"


rule passk_seeds:
    input:
        lambda wc: expand("results/samples/{method}/seed{seed}.parquet", method=wc.method, seed=SEEDS),
    output:
        "results/pass_at_k/{method}/all_seeds.json",
    params:
        num_bootstrap=config["evaluation"]["num_bootstrap"],
        code=code_stamp("passk"),
    log:
        "logs/passk/{method}/all_seeds.log",
    benchmark:
        "results/benchmarks/passk/{method}/all_seeds.tsv"
    threads: rule_threads("passk")
    resources:
        **rule_resources("passk"),
    conda:
        "../envs/nsr.yaml"
    shell:
        "nsr passk --samples {input} --method {wildcards.method}"
        " --num-bootstrap {params.num_bootstrap} --output {output} > {log} 2>&1"
