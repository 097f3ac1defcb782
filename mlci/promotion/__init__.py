"""After the merge: the promotion in the registry, and its note."""
