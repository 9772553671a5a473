"""Run one segmentation experiment, or a sweep with -m.

    python run.py                                   # synthetic data, RFM + behaviour, K-means
    python run.py data=online_retail data.path=FILE features=[rfm,tfidf] clusterer=hdbscan
    python run.py -m clusterer=kmeans,gmm features=[rfm],[rfm,behaviour]
"""

import gc

gc.disable()  # no collections while the libraries load (~0.35 s of a warm run); cli.main restarts them

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from segmentlab.cli import exit_after  # noqa: E402
from segmentlab.cli import main as run_main  # noqa: E402
from segmentlab.config import ConfigError, check_command_line  # noqa: E402

CONFIGS = Path(__file__).resolve().parent / "configs"


@hydra.main(version_base="1.3", config_path="configs", config_name="config")
def main(cfg: DictConfig) -> float:
    return run_main(cfg)


def reuse_mode(mode) -> None:
    """Let Hydra take ``hydra.mode`` from the check instead of composing the config for it.

    Hydra composes the whole config twice, once only to read ``hydra.mode``
    (``Hydra.get_mode``), and the check above has already composed it: one composition less
    (1.3 s measured at load ~10 on 2 cores). Only when the command line sets nothing under
    ``hydra`` and names no other config (the check composes ``config`` without those).
    """
    from hydra._internal.hydra import Hydra

    Hydra.get_mode = lambda self, *args, **kwargs: mode


if __name__ == "__main__":
    asking = {"--help", "-h", "--hydra-help", "--info", "-i", "--cfg", "-c", "--shell-completion"}
    try:  # one-line errors for bad options, keys and values, before Hydra's multi-line ones
        if not asking & set(sys.argv[1:]):
            mode = check_command_line(sys.argv[1:], str(CONFIGS))
            # The check composes configs/config.yaml without hydra overrides: otherwise Hydra asks.
            if not any(a.lstrip("+~").startswith(("hydra.", "hydra/"))
                       or (a.startswith("-") and a not in ("-m", "--multirun")) for a in sys.argv[1:]):
                reuse_mode(mode)
    except ConfigError as e:
        print(f"segmentlab: config error: {e}", file=sys.stderr)
        sys.exit(2)
    exit_after(main)  # exits without the interpreter's teardown (~0.6 s): see exit_after
