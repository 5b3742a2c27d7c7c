"""tinygrad_lab's benchmark suite: ``python -m benchmarks`` (or ``make bench``).

It measures, side by side in one run and always as a ratio to the hand-written numpy backprop
(``tinygrad_lab.lab.reference``):

* the per-epoch time of the lab's MLP at four sizes (``problems``) for every implementation
  (``implementations``), after checking that each one computes the reference's weights (``timing``);
* the per-op overhead of the engine against raw numpy (``overhead``);
* the memory (RSS) of long runs, each in a fresh subprocess (``memory``);
* the lab's full 20,000-epoch run (``labrun``) and a cProfile of the eager loop (``hotspots``);

and writes the tables to ``benchmarks/RESULTS.md`` (``report``), keeping its human-written ``## Notes``.
``python -m benchmarks --smoke`` runs every part with tiny epoch counts (for the tests).
"""
