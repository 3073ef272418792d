rule passk:
    input:
        "results/samples/{method}/seed{seed}.parquet",
    output:
        "results/pass_at_k/{method}/seed{seed}.json",
    params:
        num_bootstrap=config["evaluation"]["num_bootstrap"],
        test_set=PRIMARY_TEST_SET,
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
        " --test-set {params.test_set}"
        " --num-bootstrap {params.num_bootstrap} --output {output} > {log} 2>&1"


rule passk_seeds:
    input:
        lambda wc: expand("results/samples/{method}/seed{seed}.parquet", method=wc.method, seed=SEEDS),
    output:
        "results/pass_at_k/{method}/all_seeds.json",
    params:
        num_bootstrap=config["evaluation"]["num_bootstrap"],
        test_set=PRIMARY_TEST_SET,
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
        "nsr passk --samples {input} --method {wildcards.method} --test-set {params.test_set}"
        " --num-bootstrap {params.num_bootstrap} --output {output} > {log} 2>&1"


use rule passk as passk_test_set with:
    input:
        "results/test_sets/{testset}/samples/{method}/seed{seed}.parquet",
    output:
        "results/test_sets/{testset}/pass_at_k/{method}/seed{seed}.json",
    params:
        test_set=lambda wc: wc.testset,
    log:
        "logs/test_sets/{testset}/passk/{method}/seed{seed}.log",
    benchmark:
        "results/benchmarks/test_sets/{testset}/passk/{method}/seed{seed}.tsv"


use rule passk_seeds as passk_seeds_test_set with:
    input:
        lambda wc: expand(
            "results/test_sets/{testset}/samples/{method}/seed{seed}.parquet",
            testset=wc.testset,
            method=wc.method,
            seed=SEEDS,
        ),
    output:
        "results/test_sets/{testset}/pass_at_k/{method}/all_seeds.json",
    params:
        test_set=lambda wc: wc.testset,
    log:
        "logs/test_sets/{testset}/passk/{method}/all_seeds.log",
    benchmark:
        "results/benchmarks/test_sets/{testset}/passk/{method}/all_seeds.tsv"


rule base_card:
    input:
        base_card_inputs,
    output:
        csv=report("results/base_card.csv", caption="../report/base_card.rst", category="Base card"),
        md="results/base_card.md",
    params:
        sets=base_card_sets(),
        code=code_stamp("card"),
    log:
        "logs/evaluate/base_card.log",
    benchmark:
        "results/benchmarks/evaluate/base_card.tsv"
    threads: rule_threads("passk")
    resources:
        **rule_resources("passk"),
    conda:
        "../envs/nsr.yaml"
    shell:
        "nsr card {params.sets} --output {output.csv} > {log} 2>&1"
