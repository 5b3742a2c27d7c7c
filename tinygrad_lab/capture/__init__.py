"""``tl.compile``: capture one fixed-shape training step and replay its numpy work without the graph.

    step = tl.compile(train_step)      # train_step(x, y) does zero_grad, forward, backward, optimizer step
    for epoch in range(20000):
        loss = step(x, y)

How it works. The first call runs eagerly (it creates optimizer state). The second call runs eagerly too,
but with every array the step touches swapped for a ``TracedArray``: an ndarray subclass that performs
each numpy operation for real and records it (ufuncs, numpy functions, views, indexing, in-place writes).
The Tensor graph, the backward walk and the optimizer run as usual; only their numpy work is kept. The
record becomes one straight-line Python function in which every result has a preallocated buffer and
every ufunc and matmul writes into it with ``out=``; views are made once, values that depend on no input
or parameter are computed once, and work whose result nobody reads is dropped. The third call checks the
replay against an eager run of the same step (both from the same state): the arrays the step writes, the
gradients and the outputs must agree. If they differ it raises ``CaptureError``, drops the replay, and later
calls with that signature run eagerly; otherwise later calls just replay.

Where a C compiler is found, the replay runs as native code instead (``tinygrad_lab.capture.native``: compiled in a
thread while the numpy replay runs, then checked against eager in the same way); ``step.backend`` says which
runs and why, ``step.run(n, *args)`` runs n steps and returns their losses, ``native=False`` keeps numpy.

After a replay a parameter's ``.grad`` is the replay's buffer, overwritten by the next call (copy it to
keep it). A Tensor argument that ``backward`` reaches gets a ``.grad`` of its own on each call: that call's
gradient (replacing, not adding to, a ``.grad`` it already had).

What a step may do: anything built from Tensor ops, ``backward`` and in-place optimizer updates. What it
must not do: read array values into Python (``.item()``, ``if loss > x``): that is data-dependent control
flow, which a replay cannot follow, so it raises ``CaptureError`` while tracing. An optimizer's ``lr`` may
change at any time: it lives in an array the replay reads. Other Python numbers the step uses (a learning
rate of its own, a step counter kept as an int) are frozen at their values on the traced (second) call: the
check catches a change between the second and third call, nothing catches a later one. A call with other
shapes, dtypes, ``requires_grad`` or Python arguments traces again (one replay is kept per signature).
Python side effects (appending a loss to a list) run on the eager and traced calls only, as under jax.jit;
a Tensor kept from the traced call holds that call's values.
"""

from tinygrad_lab.capture.step import CompiledStep, compile
from tinygrad_lab.capture.tracer import CaptureError

__all__ = ["CaptureError", "CompiledStep", "compile"]
