"""`torchrun --nproc_per_node N -m omni.train --config RECIPE`."""

import sys

from omni.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
