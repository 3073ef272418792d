"""Screen a grid of config variants as reduced studies; one table row per variant and seed set.

    python benchmarks/screen.py benchmarks/grids/issue16.yaml [--only VARIANT ...] [--cores 2]
        [--workdir benchmarks/out/screen/issue16] [--output docs/screening/issue16] [--jobs-parallel 1]

The grid format, the resumption rules and the columns: nsr.screen and docs/screening.md.
Exit status 1 when some selected run failed (its reason is listed under the table).
"""

from nsr.screen import main

if __name__ == "__main__":
    main()
