"""The PR check, in stage order: guard, pull, validate, reproduce, compare, plots, report."""
