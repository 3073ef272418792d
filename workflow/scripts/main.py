"""The seed guide's `python main.py`: hands its arguments to `nsr train` (README, command-line interface).

    python workflow/scripts/main.py --mode nsr --vlm-name M --dataset-name D --seed 2025 ...
"""

import sys

from nsr.cli import main

if __name__ == "__main__":
    main(["train", *sys.argv[1:]])
