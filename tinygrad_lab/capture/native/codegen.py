"""From a captured step's record to C: every operation becomes a node on strided accesses (one emitter per
kind of operation), consecutive elementwise nodes and reductions over the same shape are fused into one
loop nest, small matmuls become loops and large ones stay with numpy's BLAS (between C segments).

Exactness: elementwise arithmetic is the same IEEE operation in the same type as numpy's (compiled without
FMA contraction); exp and tanh are branch-free polynomials (so their loops vectorize) within an ulp or a few
of numpy's own, log and pow come from the C library and may differ from numpy's by an ulp;
sums and matmul loops add in a fixed sequential order where numpy's pairwise sums and BLAS use others.
"""

from __future__ import annotations

import numpy as np

from tinygrad_lab.capture.native.lowering import CTYPES, MAX_ROW, Access, Lowering, Node, cast
from tinygrad_lab.capture.tracer import with_bases


def fuse(lowering: Lowering) -> list:
    """Groups of nodes, in order: a list of fusable nodes sharing one loop nest, or a single matmul/blas node.
    A node joins the open group when it loops over the same domain and every pair of accesses that may share
    memory, one of them a write, touches the same element at each iteration (and no reduction's partial
    result is read)."""
    groups: list = []
    for node in lowering.nodes:
        group = groups[-1] if groups and isinstance(groups[-1], list) else None
        if node.kind in ("matmul", "blas"):
            groups.append(node)
        elif group is not None and group[0].domain == node.domain and _fusable(lowering, group, node):
            group.append(node)
        else:
            groups.append([node])
    _drop_dead_stores(lowering, groups)
    return groups


def _fusable(lowering: Lowering, group: list, node: Node) -> bool:
    domain = node.domain
    for other in group:
        for w, reduce_w in [(other.out, other.kind == "reduce"), (node.out, node.kind == "reduce")]:
            for a in [other.out, node.out] + other.reads() + node.reads():
                if a is w or not lowering.may_overlap(a, w):
                    continue
                if reduce_w or a.key(domain) != w.key(domain):
                    return False
    return True


def _drop_dead_stores(lowering: Lowering, groups: list) -> None:
    """An elementwise result read only inside its own loop, right after it is written, needs no store; nor
    does one that a later node of the same loop overwrites at the same element."""
    every = [Access(buf, 0, (), (), np.dtype(np.float64)) for buf in range(len(lowering.table))]
    near: dict = {}  # buffer -> the buffers that may share its memory (which depends on the buffers only)
    uses: dict = {}
    for g, group in enumerate(groups):
        for node in group if isinstance(group, list) else [group]:
            for b in {a.buf for a in node.reads() + [node.out]}:
                if b not in near:
                    near[b] = [other.buf for other in every if lowering.may_overlap(every[b], other)]
                for buf in near[b]:
                    uses.setdefault(buf, set()).add(g)
    for g, group in enumerate(groups):
        if not isinstance(group, list):
            continue
        for k, node in enumerate(group):
            out, buf = node.out, node.out.buf
            if node.kind == "elementwise" and any(
                n.kind == "elementwise" and n.out.key(node.domain) == out.key(node.domain) for n in group[k + 1 :]
            ):
                node.skip_store = True
                continue
            if (
                node.kind != "elementwise"
                or buf in lowering.keep
                or uses.get(buf) != {g}
                or lowering.table[buf][0] != "array"
                or not _is_result(lowering, buf)
            ):
                continue
            earlier = [a for n in group[:k] for a in n.reads() + [n.out] if a.buf == buf]
            later = [a for n in group[k + 1 :] for a in n.reads() + [n.out] if a.buf == buf]
            if not earlier and all(a.key(node.domain) == out.key(node.domain) for a in later):
                node.skip_store = True


def _is_result(lowering: Lowering, buf: int) -> bool:
    """Whether a buffer is the replay's own (not a parameter, optimizer state or argument), unshared."""
    memory = lowering.memory[buf]
    slots = lowering.slots
    owners = [i for i, a in lowering.replay.arrays.items() if np.may_share_memory(a, memory)]
    return all(
        slots[i].kind == "result" and not any(slots[j].kind != "result" for j in with_bases(i, slots)) for i in owners
    )


def emit_group(group: list) -> list[str]:
    """C lines of one fused loop nest. Adjacent axes that every access walks as one are merged into one loop;
    without a reduction no element is touched by two iterations (see _fusable), which ``ivdep`` tells the
    compiler so that it vectorizes without run-time overlap checks."""
    domain = group[0].domain
    lines = []
    for node in group:
        if node.kind == "reduce":
            lines += _nest(
                node.out.shape, [f"{node.out.at(node.out.shape)} = {cast(node.init, node.loop, node.out.dtype)};"]
            )
    elementwise = all(node.kind != "reduce" for node in group)
    accesses = [a for node in group for a in node.reads() + [node.out]]
    loops, strides = _collapse(domain, accesses, memory_order=elementwise)

    def at(a: Access) -> str:
        terms = [str(a.offset)] + [f"i{k}*{s}" for k, s in enumerate(strides[a]) if s]
        return f"(({CTYPES[a.dtype]}*)p{a.buf})[{' + '.join(terms)}]"

    body: list[str] = []
    local: dict = {}  # access key -> C variable holding that element
    for n, node in enumerate(group):
        names = []
        for k, a in enumerate(node.operands):
            if not isinstance(a, Access):
                names.append(a)
                continue
            source = local.get(a.key(domain), at(a))
            target = node.types[k] if node.types else node.loop
            body.append(f"{CTYPES[target]} x{n}_{k} = {cast(source, a.dtype, target)};")
            names.append(f"x{n}_{k}")
        if node.kind == "reduce":
            value = node.expr.replace("v0", at(node.out)).replace("v1", names[0])
            body.append(f"{at(node.out)} = {cast(value, node.loop, node.out.dtype)};")
            continue
        expr = node.expr.replace("{t}", f"t{n}c")
        if "{t}" in node.expr:
            body.append(f"{CTYPES[node.loop]} t{n}c;")
        for k, name in enumerate(names):
            expr = expr.replace(f"v{k}", name)
        body.append(f"{CTYPES[node.out.dtype]} t{n} = {cast(expr, node.result or node.loop, node.out.dtype)};")
        if not node.skip_store:
            body.append(f"{at(node.out)} = t{n};")
        local[node.out.key(domain)] = f"t{n}"
    return lines + _nest(loops, body, ivdep=elementwise)


def _collapse(domain: tuple, accesses: list, memory_order: bool = False) -> tuple[tuple, dict]:
    """Merge adjacent loop axes k, k+1 wherever every access has stride[k] == stride[k+1] * domain[k+1].
    ``memory_order`` (a loop whose iterations may run in any order) first sorts the axes by their strides,
    largest outermost, so that a transposed weight's update walks its memory in order, not across it."""
    strides = {a: list(a.over(domain)) for a in accesses}
    axes = list(range(len(domain)))
    if memory_order:
        axes.sort(key=lambda k: -sum(abs(s[k]) for s in strides.values()))
        strides = {a: [s[k] for k in axes] for a, s in strides.items()}
    dims = [domain[k] for k in axes]
    for k in range(len(dims) - 2, -1, -1):
        if all(s[k] == s[k + 1] * dims[k + 1] for s in strides.values()):
            dims[k] *= dims.pop(k + 1)
            for s in strides.values():
                s[k] = s.pop(k + 1)
    return tuple(dims), {a: tuple(s) for a, s in strides.items()}


def _nest(domain: tuple, body: list, ivdep: bool = False) -> list:
    lines = [f"for (long i{k} = 0; i{k} < {n}; i{k}++)" for k, n in enumerate(domain)]
    if ivdep and lines:
        lines.insert(len(lines) - 1, "#pragma GCC ivdep")
    return lines + ["{"] + ["  " + b for b in body] + ["}"]


def emit_matmul(node: Node) -> list[str]:
    """out[i, j] = sum_p a[i, p] b[p, j], each sum in order of p. When a's columns are contiguous (a transposed
    matrix) and the output is small, it is accumulated whole on the stack with p outermost, so that the loop
    over i or j runs along contiguous memory; otherwise a row at a time."""
    a, b, out = node.operands[0], node.operands[1], node.out
    m, n, k = node.domain
    t = CTYPES[node.loop]

    def at(x: Access, i: str, j: str) -> str:
        return cast(
            f"(({CTYPES[x.dtype]}*)p{x.buf})[{x.offset} + {i}*{x.strides[0]} + {j}*{x.strides[1]}]", x.dtype, node.loop
        )

    store = f"(({CTYPES[out.dtype]}*)p{out.buf})[{out.offset} + i*{out.strides[0]} + j*{out.strides[1]}]"
    if m * n <= MAX_ROW and abs(a.strides[0]) <= abs(a.strides[1]):  # a's columns are contiguous
        return [
            f"{{ {t} acc[{m * n}] = {{0}};",
            f"  for (long p = 0; p < {k}; p++)",
            f"    for (long i = 0; i < {m}; i++) {{ {t} s = {at(a, 'i', 'p')};",
            f"      for (long j = 0; j < {n}; j++) acc[i*{n} + j] += s * {at(b, 'p', 'j')}; }}",
            f"  for (long i = 0; i < {m}; i++) for (long j = 0; j < {n}; j++) "
            f"{store} = {cast(f'acc[i*{n} + j]', node.loop, out.dtype)}; }}",
        ]
    return [
        f"for (long i = 0; i < {m}; i++) {{",
        f"  {t} row[{n}];",
        f"  for (long j = 0; j < {n}; j++) row[j] = 0;",
        f"  for (long p = 0; p < {k}; p++) {{ {t} s = {at(a, 'i', 'p')};",
        f"    for (long j = 0; j < {n}; j++) row[j] += s * {at(b, 'p', 'j')}; }}",
        f"  for (long j = 0; j < {n}; j++) {store} = {cast('row[j]', node.loop, out.dtype)};",
        "}",
    ]


# exp(x) = 2^k exp(r) with r = x - k ln2 (|r| <= ln2/2, ln2 in two parts), exp(r) - 1 = r + r^2 q(r) with q the
# degree-9 Chebyshev fit of (exp(r) - 1 - r) / r^2 on that interval (error under 4e-17 of exp(r), a third of an
# ulp), evaluated with fused multiply-adds where the CPU has them (a third fewer vector instructions than degree
# 13 without), 2^k applied in two halves so that subnormal results round once. Always inlined and branch-free,
# so loops calling them vectorize: exp within 1 ulp of numpy's own exp over its whole range (the tests check it
# element by element; about 1.08 ulps from the exact value at worst), tanh within a few ulps (the C library's
# tanh is a call per element that no loop vectorizes).
# No #include: the few declarations the code needs are written out, which saves the compiler a tenth of its
# time on a small program (parsing the C library's headers).
_PRELUDE = r"""typedef unsigned long long uint64_t;
typedef long long int64_t;
typedef int int32_t;
double log(double); float logf(float);
double sqrt(double); float sqrtf(float); double expm1(double); float expm1f(float);
double log1p(double); float log1pf(float); double fabs(double); float fabsf(float);
double pow(double, double); float powf(float, float);
#define isnan __builtin_isnan
#define isinf __builtin_isinf
#define isfinite __builtin_isfinite
#define INFINITY __builtin_inf()
#define NAN __builtin_nan("")
#define memcpy __builtin_memcpy
#define TL_INLINE __attribute__((always_inline))
#ifdef __FMA__
#define TL_FMA(a, b, c) __builtin_fma(a, b, c)
#else
#define TL_FMA(a, b, c) ((a) * (b) + (c))
#endif
static inline uint64_t tl_bits(double x) { uint64_t u; memcpy(&u, &x, 8); return u; }
static inline double tl_pow2(double k) {  /* 2^k for an integer-valued k in [-1022, 1023] */
  uint64_t u = ((tl_bits(k + 0x1.8p52) & 0xfffffffffffffULL) - 0x8000000000000ULL + 1023) << 52;
  double d;
  memcpy(&d, &u, 8);
  return d;
}
/* exp(r) - 1 for x = k ln2 + r, |r| <= ln2/2 */
static inline TL_INLINE double tl_expm1_reduced(double x, double *k) {
  const double shift = 0x1.8p52;
  *k = (x * 0x1.71547652b82fep0 + shift) - shift;
  double r = TL_FMA(-*k, 0x1.62e42fefa3800p-1, x);
  r = TL_FMA(-*k, 0x1.ef35793c76730p-45, r);
  double p = 2.5100375832561234e-08;
  p = TL_FMA(p, r, 2.7620075879983367e-07);
  p = TL_FMA(p, r, 2.7557268480310024e-06);
  p = TL_FMA(p, r, 2.4801521322368692e-05);
  p = TL_FMA(p, r, 0.00019841269863040545);
  p = TL_FMA(p, r, 0.0013888888917196719);
  p = TL_FMA(p, r, 0.008333333333330065);
  p = TL_FMA(p, r, 0.041666666666624164);
  p = TL_FMA(p, r, 0.16666666666666669);
  p = TL_FMA(p, r, 0.5000000000000001);
  return TL_FMA(p * r, r, r);
}
static inline TL_INLINE double tl_exp(double x) {
  double xc = x > 709.8 ? 709.8 : x;
  xc = xc < -745.2 ? -745.2 : xc;
  double k;
  double p = tl_expm1_reduced(xc, &k);
  double k1 = (k * 0.5 + 0x1.8p52) - 0x1.8p52;
  return (1.0 + p) * tl_pow2(k1) * tl_pow2(k - k1);
}
static inline TL_INLINE double tl_tanh(double x) {  /* |tanh x| = e / (e + 2), e = exp(2|x|) - 1 without cancellation */
  double a = __builtin_fabs(x);
  a = a > 20.0 ? 20.0 : a;  /* tanh(20) rounds to 1; NaN passes through */
  double k;
  double p = tl_expm1_reduced(2.0 * a, &k);
  double s = tl_pow2(k);
  double e = (s - 1.0) + s * p;  /* 2^k (1 + p) - 1: exactly p when k is 0 */
  return __builtin_copysign(e / (e + 2.0), x);
}
static inline float tl_expf(float x) { return (float)tl_exp((double)x); }
static inline float tl_tanhf(float x) { return (float)tl_tanh((double)x); }
"""


def contiguous(access: Access) -> bool:
    """Whether the elements of ``access`` follow each other in C order (what tl_run copies in one loop)."""
    expected = 1
    for n, stride in zip(reversed(access.shape), reversed(access.strides)):
        if n != 1 and stride != expected:
            return False
        expected *= n
    return True


def c_source(lowering: Lowering, groups: list, loss: Access | None, second: Access | None = None) -> tuple[str, list]:
    """The C file and the step's segments in order: ("c", function name) or ("blas", node). With a single
    C segment and a loss, ``tl_run(table, n, losses, record)`` runs n steps and records the loss of each,
    and, when ``record`` is not NULL and ``second`` (the step's second output) is contiguous, that output
    after each step too."""
    segments: list = []
    functions: list[list[str]] = []  # per C segment: its body's lines
    for group in groups:
        if isinstance(group, Node) and group.kind == "blas":
            segments.append(("blas", group))
            continue
        if not segments or segments[-1][0] != "c":
            segments.append(("c", f"seg{len(functions)}"))
            functions.append([])
        functions[-1] += emit_matmul(group) if isinstance(group, Node) else emit_group(group)
    lines = [_PRELUDE]
    pointers = [f"  void *const p{k} = B[{k}];" for k in range(len(lowering.table))]
    for k, body in enumerate(functions):
        lines += [
            f"static void seg{k}(void **B) {{",
            *pointers,
            "  (void)B;",
            *["  " + b for b in body],
            "}",
            f"int tl_seg{k}(void **B) {{ seg{k}(B); return 0; }}",
            "",
        ]
    if len(functions) == 1 and len(segments) == 1 and loss is not None:
        copy = []
        if second is not None and contiguous(second):
            size, t = int(np.prod(second.shape)), CTYPES[second.dtype]
            copy = [
                f"  const {t} *second = ({t}*)B[{second.buf}] + {second.offset};",
                f"  {t} *rec = ({t}*)record;",
                "  if (rec) {",
                "    for (long s = 0; s < n; s++) {",
                "      seg0(B); losses[s] = (double)*loss;",
                f"      for (long j = 0; j < {size}; j++) rec[s * {size} + j] = second[j];",
                "    }",
                "    return 0;",
                "  }",
            ]
        lines += [
            "int tl_run(void **B, long n, double *losses, void *record) {",
            f"  const {CTYPES[loss.dtype]} *loss = ({CTYPES[loss.dtype]}*)B[{loss.buf}] + {loss.offset};",
            *copy,
            "  (void)record;",
            "  for (long s = 0; s < n; s++) { seg0(B); losses[s] = (double)*loss; }",
            "  return 0;",
            "}",
        ]
    return "\n".join(lines) + "\n", segments
