"""The kernel stages: source, config, build."""
