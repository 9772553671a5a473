"""Run one segmentation experiment, or a sweep with -m.

    python run.py                                   # synthetic data, RFM + behaviour, K-means
    python run.py data=online_retail data.path=FILE features=[rfm,tfidf] clusterer=hdbscan
    python run.py -m clusterer=kmeans,gmm features=[rfm],[rfm,behaviour]
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from segmentlab.cli import main as run_main
from segmentlab.config import ConfigError, check_command_line

CONFIGS = Path(__file__).resolve().parent / "configs"


@hydra.main(version_base="1.3", config_path="configs", config_name="config")
def main(cfg: DictConfig) -> float:
    return run_main(cfg)


if __name__ == "__main__":
    asking = {"--help", "-h", "--hydra-help", "--info", "-i", "--cfg", "-c", "--shell-completion"}
    try:  # one-line errors for bad options, keys and values, before Hydra's multi-line ones
        if not asking & set(sys.argv[1:]):
            check_command_line(sys.argv[1:], str(CONFIGS))
    except ConfigError as e:
        print(f"segmentlab: config error: {e}", file=sys.stderr)
        sys.exit(2)
    main()
