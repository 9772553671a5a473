"""Run one segmentation experiment, or a sweep with -m.

    python run.py                                   # synthetic data, RFM, K-means
    python run.py data=online_retail data.path=FILE features=[rfm,tfidf] clusterer=hdbscan
    python run.py -m clusterer=kmeans,gmm features=[rfm],[rfm,behaviour]
"""

import hydra
from omegaconf import DictConfig

from segmentlab.cli import main as run_main


@hydra.main(version_base="1.3", config_path="configs", config_name="config")
def main(cfg: DictConfig) -> float:
    return run_main(cfg)


if __name__ == "__main__":
    main()
