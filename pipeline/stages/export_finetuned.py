"""Stage ``export_finetuned``: the fine-tuned network's checkpoint to ONNX, as ``export`` does.

The same export and parity check as :mod:`pipeline.stages.export`, on other paths.
"""

from __future__ import annotations

import sys

from pipeline.stages._common import script
from pipeline.stages.export import main, run

__all__ = ["main", "run"]

if __name__ == "__main__":
    sys.exit(script(main, "export_finetuned"))
