"""Show your math: what a PR's model costs to run and to train, and what drives its
predictions, measured base against PR on the same rows in the same job."""
