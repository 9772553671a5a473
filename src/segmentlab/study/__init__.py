"""Running experiments as studies: assembling an experiment from a composed config
(`experiment`), running it (`runner`), Optuna tuning (`tuning`) and everything sent to MLflow
(`tracking`, the only module that imports mlflow).

The top layer below `cli`: may import every other package.
"""
