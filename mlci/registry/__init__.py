"""MLflow: tracking runs and tags, registered versions and aliases."""
