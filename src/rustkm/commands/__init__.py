"""The command-line layer: each module registers its verbs with argparse and turns their
arguments into calls of the domain modules (doctor, export, modcheck, scaffold, cache_report,
repl), which know nothing of argparse. rustkm.cli wires them in."""
