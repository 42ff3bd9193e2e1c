"""Turn a model reference into a ModelSpec. Sources do I/O and nothing else."""
