"""torch's dtype names as numpy's scalar types, so ``tl.float32``, ``tl.long`` or ``tl.bool`` work wherever numpy
takes a dtype (``tl.zeros(3, dtype=tl.long)``, ``x.to(tl.float32)``). ``float``, ``int`` and ``bool`` (torch's
float32, int32 and bool) are attributes of the package but not in ``__all__``: a star import must not replace
Python's own."""

import numpy as np

float16 = half = np.float16
float32 = float = np.float32
float64 = double = np.float64
int8 = np.int8
int16 = short = np.int16
int32 = int = np.int32
int64 = long = np.int64
uint8 = np.uint8
bool = np.bool_

__all__ = [
    "float16",
    "half",
    "float32",
    "float64",
    "double",
    "int8",
    "int16",
    "short",
    "int32",
    "int64",
    "long",
    "uint8",
]
