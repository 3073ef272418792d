"""The seed guide's `python generate_samples.py`: hands its arguments to `nsr sample` (README, command-line interface).

    python workflow/scripts/generate_samples.py --checkpoint-path C --dataset-name D --output-path samples_nsr.json --num-samples 256
"""

import sys

from nsr.cli import main

if __name__ == "__main__":
    main(["sample", *sys.argv[1:]])
