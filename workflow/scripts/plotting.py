"""The seed guide's `python plotting.py`: hands its arguments to `nsr plot` (README, command-line interface).

    python workflow/scripts/plotting.py --results results_*.json --labels GRPO PSR NSR W-REINFORCE --output comparison.png
"""

import sys

from nsr.cli import main

if __name__ == "__main__":
    main(["plot", *sys.argv[1:]])
