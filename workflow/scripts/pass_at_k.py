"""The seed guide's `python pass_at_k.py`: hands its arguments to `nsr passk` (README, command-line interface).

    python workflow/scripts/pass_at_k.py --samples-path samples_nsr.json --output-path results_nsr.json --method-name NSR
"""

import sys

from nsr.cli import main

if __name__ == "__main__":
    main(["passk", *sys.argv[1:]])
