rule plot_comparison:
    input:
        comparison_results(),
    output:
        png=report("results/comparison_pass_at_k.png", caption="../report/comparison.rst", category="Pass@k"),
        csv=report("results/comparison_pass_at_k.csv", caption="../report/table.rst", category="Pass@k"),
        md="results/comparison_pass_at_k.md",
    params:
        code=code_stamp("plot"),
    log:
        "logs/plot/comparison.log",
    benchmark:
        "results/benchmarks/plot/comparison.tsv"
    threads: rule_threads("plot")
    resources:
        **rule_resources("plot"),
    conda:
        "../envs/nsr.yaml"
    shell:
        "nsr plot --results {input} --output {output.png} > {log} 2>&1"


rule plot_training:
    input:
        train_logs(),
    output:
        report("results/training_curves.png", caption="../report/training.rst", category="Training dynamics"),
    params:
        logs=lambda wc, input: " ".join(f"{d}/train_log.csv" for d in input),
        code=code_stamp("plot"),
    log:
        "logs/plot/training.log",
    benchmark:
        "results/benchmarks/plot/training.tsv"
    threads: rule_threads("plot")
    resources:
        **rule_resources("plot"),
    conda:
        "../envs/nsr.yaml"
    shell:
        "nsr plot --train-logs {params.logs} --dynamics-output {output} > {log} 2>&1"


rule plot_answer_forms:
    input:
        answer_forms_inputs(),
    output:
        png=report("results/answer_forms.png", caption="../report/answer_forms.rst", category="Answer forms"),
        csv="results/answer_forms.csv",
        md="results/answer_forms.md",
    params:
        sets=answer_forms_sets(),
        code=code_stamp("forms"),
    log:
        "logs/plot/answer_forms.log",
    benchmark:
        "results/benchmarks/plot/answer_forms.tsv"
    threads: rule_threads("plot")
    resources:
        **rule_resources("plot"),
    conda:
        "../envs/nsr.yaml"
    shell:
        "nsr forms {params.sets} --output {output.png} > {log} 2>&1"


rule coverage_by_difficulty:
    input:
        coverage_inputs,
    output:
        png=report(
            "results/coverage_by_difficulty.png", caption="../report/coverage.rst", category="Coverage by difficulty"
        ),
        csv="results/coverage_by_difficulty.csv",
        md="results/coverage_by_difficulty.md",
    params:
        sets=coverage_sets(),
        base=BASE_METHOD,
        code=code_stamp("coverage"),
    log:
        "logs/plot/coverage_by_difficulty.log",
    benchmark:
        "results/benchmarks/plot/coverage_by_difficulty.tsv"
    threads: rule_threads("plot")
    resources:
        **rule_resources("plot"),
    conda:
        "../envs/nsr.yaml"
    shell:
        "nsr coverage {params.sets} --base {params.base} --output {output.png} > {log} 2>&1"


rule answer_distributions:
    input:
        answer_distributions_inputs,
    output:
        png=report(
            "results/answer_distributions.png",
            caption="../report/answer_distributions.rst",
            category="Answer distributions",
        ),
        csv=report(
            "results/answer_distributions.csv",
            caption="../report/answer_distributions.rst",
            category="Answer distributions",
        ),
    params:
        sets=answer_forms_sets(),
        base=BASE_METHOD,
        code=code_stamp("answers"),
    log:
        "logs/plot/answer_distributions.log",
    benchmark:
        "results/benchmarks/plot/answer_distributions.tsv"
    threads: rule_threads("plot")
    resources:
        **rule_resources("plot"),
    conda:
        "../envs/nsr.yaml"
    shell:
        "nsr answers {params.sets} --base {params.base} --output {output.png} > {log} 2>&1"
