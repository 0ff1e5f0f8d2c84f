"""Deployment-side glue: serving the deployments of ``prefect.yaml`` locally (``renkei demo``)."""
