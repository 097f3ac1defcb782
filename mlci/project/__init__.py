"""Everything DVC: the pipeline, pull and push, reproduce, lineage, the model's declaration."""
