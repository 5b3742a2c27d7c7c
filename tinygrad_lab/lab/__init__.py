"""The Lab 1 (backpropagation) report built on the engine: its datasets, training loop, CLI and report."""
