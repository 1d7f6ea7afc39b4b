"""A jaxpr as an ONNX graph: jseg's own lowering for :func:`jseg.export.export_onnx`.

Why not jax2onnx (measured, docs/design_notes.md): it re-implements flax's layers with shape
rules of its own (wrong sizes for strided convolutions behind a backbone), and puts a Transpose
pair around every convolution. This lowering reads the jaxpr JAX traced, so every size is JAX's
own symbolic expression, and it tracks each tensor's layout: a value is stored with its axes in
any order (``perm``), convolutions take and give NCHW, elementwise ops, reductions and
transposes follow the stored order, and a Transpose appears only where an op needs an order the
value does not have. Values broadcast by ``broadcast_in_dim`` / ``iota`` stay unexpanded (ONNX
broadcasts) until an op needs them whole. Constants are folded at export time.

Covers the primitives jseg's inference uses; any other raises naming it.
"""
import itertools
from typing import Callable, Dict, List, Optional, Sequence

import jax
import jax.extend.core as jcore
import jax.numpy as jnp
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17  # ONNX Runtime, TensorRT 8.6+ and OpenVINO 2023+ all take opset 17
IR_VERSION = 8


def _is_static(*dims) -> bool:
  return all(isinstance(d, (int, np.integer)) for d in dims)


def _onnx_type(dtype) -> int:
  return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


class _Value:
  """A jaxpr value in the graph: ONNX tensor ``name`` holding logical axis ``perm[i]`` in
  stored axis ``i``; ``full`` False when stored dims may be 1 where the logical one is not (a
  broadcast not yet expanded). A constant has ``const`` (logical order, maybe with 1s) instead
  of a name; a lazy broadcast has ``bcast`` = (source value, broadcast_dimensions)."""

  def __init__(self, shape, dtype, name=None, perm=None, full=True, const=None, bcast=None):
    self.shape, self.dtype = tuple(shape), np.dtype(dtype)
    self.name, self.full, self.const, self.bcast = name, full, const, bcast
    self.perm = tuple(range(len(self.shape))) if perm is None else tuple(perm)

  @property
  def rank(self):
    return len(self.shape)


class _Graph:
  """Nodes, initializers and the symbolic-size expressions of one ONNX graph."""

  def __init__(self):
    self.nodes: List[onnx.NodeProto] = []
    self.initializers: List[onnx.TensorProto] = []
    self.dim_vars: Dict[str, tuple] = {}  # symbolic variable -> (input name, axis, divisor)
    self._count = itertools.count()
    self._consts: Dict[tuple, str] = {}
    self._nodes: Dict[tuple, str] = {}

  def fresh(self, hint: str) -> str:
    return f'{hint}_{next(self._count)}'

  def node(self, op: str, inputs: Sequence[str], **attrs) -> str:
    """The output of ``op`` on ``inputs``: an existing node's when one computes the same (the
    resize and pooling weights of equal sizes, computed once: HRNet / OCRNet's graphs third
    the size)."""
    key = (op, tuple(inputs), repr(sorted(attrs.items())))
    if key not in self._nodes:
      out = self.fresh(op.lower())
      self.nodes.append(helper.make_node(op, list(inputs), [out], name=out, **attrs))
      self._nodes[key] = out
    return self._nodes[key]

  def constant(self, array, dtype=None) -> str:
    array = np.asarray(array, dtype)
    key = (array.dtype.str, array.shape, array.tobytes()) if array.size <= 64 else None
    if key is not None and key in self._consts:
      return self._consts[key]
    name = self.fresh('const')
    self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
    if key is not None:
      self._consts[key] = name
    return name

  # Symbolic sizes: JAX's normalized expressions (sums of coefficient x product of factors;
  # a factor is a variable or floordiv / mod / max / min of expressions) as int64 [1] tensors
  # (computed once each: :meth:`node` reuses equal nodes).
  def dim(self, d) -> str:
    if _is_static(d):
      return self.constant([int(d)], np.int64)
    total = None
    for term, coeff in d._sorted_terms:
      value = None
      for factor, power in term._factors:
        f = self._factor(factor)
        for _ in range(power):
          value = f if value is None else self.node('Mul', [value, f])
      if value is None:
        value = self.constant([coeff], np.int64)
      elif coeff != 1:
        value = self.node('Mul', [value, self.constant([coeff], np.int64)])
      total = value if total is None else self.node('Add', [total, value])
    return total

  def _factor(self, factor) -> str:
    if factor.var is not None:
      if factor.var not in self.dim_vars:
        raise ValueError(f'symbolic size {factor.var} is not an input dimension')
      source, axis, divisor = self.dim_vars[factor.var]
      size = self.node('Shape', [source], start=axis, end=axis + 1)
      return size if divisor == 1 else self.node('Div', [size, self.constant([divisor],
                                                                             np.int64)])
    a, b = (self.dim(x) for x in factor.operands)
    if factor.operation == 'floordiv':  # exact floor division: ONNX Div truncates
      return self.node('Div', [self.node('Sub', [a, self.node('Mod', [a, b])]), b])
    if factor.operation == 'mod':
      return self.node('Mod', [a, b])
    if factor.operation in ('max', 'min'):
      return self.node(factor.operation.capitalize(), [a, b])
    raise NotImplementedError(f'symbolic size operation {factor.operation!r}')

  def shape(self, dims) -> str:
    """An int64 shape tensor for ``dims`` (ints or symbolic)."""
    if _is_static(*dims):
      return self.constant([int(d) for d in dims], np.int64)
    return self.node('Concat', [self.dim(d) for d in dims], axis=0)

  def scalar_dim(self, d) -> str:
    return self.node('Squeeze', [self.dim(d), self.constant([0], np.int64)])


_ELEMENTWISE = {
    'add': 'Add', 'sub': 'Sub', 'mul': 'Mul', 'div': 'Div', 'max': 'Max', 'min': 'Min',
    'pow': 'Pow', 'eq': 'Equal', 'lt': 'Less', 'le': 'LessOrEqual', 'gt': 'Greater',
    'ge': 'GreaterOrEqual', 'and': 'And', 'or': 'Or', 'not': 'Not', 'neg': 'Neg', 'exp': 'Exp',
    'log': 'Log', 'tanh': 'Tanh', 'logistic': 'Sigmoid', 'sqrt': 'Sqrt', 'abs': 'Abs',
    'floor': 'Floor', 'ceil': 'Ceil', 'sign': 'Sign', 'erf': 'Erf', 'ne': None, 'rem': None,
    'rsqrt': None, 'square': None, 'integer_pow': None, 'select_n': None,
    'convert_element_type': None,
}
_IDENTITY = ('copy', 'stop_gradient')
_INLINE = {'jit': 'jaxpr', 'pjit': 'jaxpr', 'closed_call': 'call_jaxpr',
           'custom_jvp_call': 'call_jaxpr', 'custom_vjp_call': 'call_jaxpr',
           'checkpoint': 'jaxpr'}
_UNFOLDABLE = set(_INLINE) | {'cond', 'dim_as_value'}


class _Lowering:
  """Walks a jaxpr, emitting ONNX nodes into a :class:`_Graph`."""

  def __init__(self, graph: _Graph):
    self.g = graph

  # ---- values in a requested layout
  def const_value(self, array, shape=None) -> _Value:
    array = np.asarray(array)
    shape = array.shape if shape is None else shape
    return _Value(shape, array.dtype, const=array, full=array.shape == tuple(shape))

  def get(self, v: _Value, perm=None, full=True) -> str:
    """``v`` stored in ``perm`` (its own when None), expanded to its whole shape if ``full``."""
    perm = v.perm if perm is None else tuple(perm)
    if v.const is not None:
      array = np.transpose(v.const, perm)
      shape = tuple(v.shape[p] for p in perm)
      if not full or array.shape == shape:
        return self.g.constant(array)
      if _is_static(*shape):
        return self.g.constant(np.broadcast_to(array, shape))
      return self.g.node('Expand', [self.g.constant(array), self.g.shape(shape)])
    if v.bcast is not None:
      name = self._broadcast(v, perm)
    elif perm == v.perm:
      name = v.name
    else:
      name = self.g.node('Transpose', [v.name], perm=[v.perm.index(p) for p in perm])
    if full and not (v.full and v.bcast is None):
      name = self.g.node('Expand', [name, self.g.shape([v.shape[p] for p in perm])])
    return name

  def _broadcast(self, v: _Value, perm) -> str:
    source, dims = v.bcast
    position = {d: perm.index(d) for d in dims}
    order = sorted(range(source.rank), key=lambda j: position[dims[j]])
    name = self.get(source, tuple(order), full=False)
    new_axes = [i for i, p in enumerate(perm) if p not in dims]
    if new_axes:
      name = self.g.node('Unsqueeze', [name, self.g.constant(new_axes, np.int64)])
    return name

  def tensor(self, aval, name, perm=None, full=True) -> _Value:
    return _Value(aval.shape, aval.dtype, name=name, perm=perm, full=full)

  # ---- the walk
  def run(self, jaxpr: jcore.Jaxpr, consts, args: Sequence[_Value]) -> List[_Value]:
    env = {}

    def read(var):
      if isinstance(var, jcore.Literal):
        return self.const_value(np.asarray(var.val, var.aval.dtype))
      return env[var]

    for var, c in zip(jaxpr.constvars, consts):
      env[var] = c if isinstance(c, _Value) else self.const_value(np.asarray(c))
    for var, a in zip(jaxpr.invars, args):
      env[var] = a
    for eqn in jaxpr.eqns:
      ins = [read(v) for v in eqn.invars]
      outs = self.equation(eqn, ins)
      for var, out in zip(eqn.outvars, outs):
        env[var] = out
    return [read(v) for v in jaxpr.outvars]

  def equation(self, eqn, ins: List[_Value]) -> List[_Value]:
    name = eqn.primitive.name
    if name in _INLINE:
      closed = eqn.params[_INLINE[name]]
      inner = closed.jaxpr if hasattr(closed, 'jaxpr') else closed
      consts = closed.consts if hasattr(closed, 'consts') else ()
      n = eqn.params.get('num_consts', 0) if name.startswith('custom') else 0
      return self.run(inner, consts, ins[n:] if n and len(inner.invars) < len(ins) else ins)
    if (name not in _UNFOLDABLE and all(v.const is not None and _is_static(*v.shape)
                                        for v in ins)
        and all(_is_static(*o.aval.shape) for o in eqn.outvars)):
      return self.fold(eqn, ins)
    if name in _IDENTITY:
      return ins[:1]
    method = getattr(self, 'p_' + name.replace('-', '_'), None)
    if method is not None:
      out = method(eqn, *ins)
      return list(out) if isinstance(out, (list, tuple)) else [out]
    if name in _ELEMENTWISE:
      return [self.elementwise(eqn, ins)]
    raise NotImplementedError(f'ONNX export: jax primitive {name!r} has no lowering '
                              f'(at {eqn.source_info.traceback})')

  def fold(self, eqn, ins):
    args = [jnp.asarray(np.broadcast_to(v.const, v.shape)) for v in ins]
    outs = eqn.primitive.bind(*args, **eqn.params)
    outs = outs if eqn.primitive.multiple_results else [outs]
    return [self.const_value(np.asarray(o)) for o in outs]

  # ---- elementwise
  def elementwise(self, eqn, ins: List[_Value]) -> _Value:
    name, aval = eqn.primitive.name, eqn.outvars[0].aval
    live = [v for v in ins if v.const is None]
    lead = next((v for v in live if v.full and v.bcast is None), live[0] if live else None)
    perm = lead.perm if lead is not None and lead.rank == len(aval.shape) else None
    perm = tuple(range(len(aval.shape))) if perm is None else perm
    full = any(v.full and v.bcast is None and v.const is None for v in ins)
    if name == 'sub' and ins[1].const is not None and ins[0].const is None:
      # x + (-c), not x - c (the same number): ONNX Runtime folds Conv -> Mul / Add chains
      ins = [ins[0], self.const_value(-ins[1].const, ins[1].shape)]
      name = 'add'
    if name == 'max' and ins[1].const is not None and not np.any(ins[1].const):
      return self.tensor(aval, self.g.node('Relu', [self.get(ins[0], perm, full=False)]),
                         perm, full)  # the same numbers; Runtimes fuse Conv + Relu
    xs = [self.get(v, perm, full=False) if v.rank == len(perm) else self.get(v, full=False)
          for v in ins]
    op = _ELEMENTWISE[name]
    if op is not None:
      out = self.g.node(op, xs)
    elif name == 'ne':
      out = self.g.node('Not', [self.g.node('Equal', xs)])
    elif name == 'rem':  # C remainder, the dividend's sign
      out = self.g.node('Mod', xs, fmod=1)
    elif name == 'rsqrt':
      out = self.g.node('Reciprocal', [self.g.node('Sqrt', xs)])
    elif name == 'square':
      out = self.g.node('Mul', [xs[0], xs[0]])
    elif name == 'integer_pow':
      y = eqn.params['y']
      if y < 1:
        raise NotImplementedError(f'integer_pow with y={y}')
      out = xs[0]
      for _ in range(y - 1):
        out = self.g.node('Mul', [out, xs[0]])
    elif name == 'select_n':
      if len(xs) != 3:
        raise NotImplementedError('select_n of more than two cases')
      pred = xs[0] if ins[0].dtype == np.bool_ else self.g.node(
          'Cast', [xs[0]], to=TensorProto.BOOL)
      out = self.g.node('Where', [pred, xs[2], xs[1]])
    elif name == 'convert_element_type':
      out = self.g.node('Cast', xs, to=_onnx_type(aval.dtype))
    return self.tensor(aval, out, perm, full)

  # ---- layout-free reshapes of the logical view
  def p_transpose(self, eqn, x):
    permutation = eqn.params['permutation']
    inverse = np.argsort(permutation)
    aval = eqn.outvars[0].aval
    if x.bcast is not None:  # a broadcast of the same source along permuted axes
      source, dims = x.bcast
      return _Value(aval.shape, aval.dtype, bcast=(source, tuple(int(inverse[d]) for d in dims)),
                    full=False)
    return _Value(aval.shape, aval.dtype, name=x.name, full=x.full,
                  perm=tuple(int(inverse[p]) for p in x.perm))

  def p_broadcast_in_dim(self, eqn, x, *dyn):
    if dyn:
      raise NotImplementedError('broadcast_in_dim with dynamic shape operands')
    aval = eqn.outvars[0].aval
    dims = tuple(eqn.params['broadcast_dimensions'])
    if x.const is not None:
      shape = [1] * len(aval.shape)
      for j, d in enumerate(dims):
        shape[d] = x.const.shape[j]
      array = x.const.reshape(shape)
      if _is_static(*aval.shape):
        array = np.broadcast_to(array, aval.shape)
      return self.const_value(array, aval.shape)
    return _Value(aval.shape, aval.dtype, bcast=(x, dims), full=False)

  def p_iota(self, eqn):
    aval, axis = eqn.outvars[0].aval, eqn.params['dimension']
    size = aval.shape[axis]
    values = self.g.node('Range', [self.g.constant(np.int64(0)), self.g.scalar_dim(size),
                                   self.g.constant(np.int64(1))])
    values = self.g.node('Cast', [values], to=_onnx_type(aval.dtype))
    source = _Value((size,), aval.dtype, name=values)
    return _Value(aval.shape, aval.dtype, bcast=(source, (axis,)), full=False)

  def p_dim_as_value(self, eqn):
    aval = eqn.outvars[0].aval
    value = self.g.scalar_dim(eqn.params['dim'])
    return self.tensor(aval, self.g.node('Cast', [value], to=_onnx_type(aval.dtype)))

  def p_squeeze(self, eqn, x):
    dims = set(eqn.params['dimensions'])
    aval = eqn.outvars[0].aval
    if x.const is not None:
      return self.const_value(np.squeeze(np.broadcast_to(x.const, x.shape), tuple(dims)))
    name = self.get(x, full=x.full)
    stored = [i for i, p in enumerate(x.perm) if p in dims]
    out = self.g.node('Squeeze', [name, self.g.constant(stored, np.int64)])
    return self.tensor(aval, out, _without(x.perm, dims), full=x.full)

  def p_reshape(self, eqn, x, *dyn):
    if dyn:
      raise NotImplementedError('reshape with dynamic shape operands')
    aval = eqn.outvars[0].aval
    groups = _reshape_groups(x.shape, aval.shape)
    if groups is not None and x.const is None:
      # Stored order already has each group's axes together and in order: reshape as stored.
      first = {g[0][0]: g for g in groups if g[0]}
      order, ok, i = [], True, 0
      grouped = {a for g in groups for a in g[0]}
      perm = [p for p in x.perm if p in grouped]  # size-1 axes aside
      while i < len(perm):
        group = first.get(perm[i])
        if group is None or tuple(perm[i:i + len(group[0])]) != tuple(group[0]):
          ok = False
          break
        order.append(group)
        i += len(group[0])
      if ok and len(order) == len([g for g in groups if g[0]]):
        empty = [g for g in groups if not g[0]]  # new size-1 axes: at the end, stored
        out_perm = [a for g in order + empty for a in g[1]]
        name = self.get(x)
        out = self.g.node('Reshape', [name, self.g.shape([aval.shape[a] for a in out_perm])])
        return self.tensor(aval, out, out_perm)
    name = self.get(x, tuple(range(x.rank)))
    return self.tensor(aval, self.g.node('Reshape', [name, self.g.shape(aval.shape)]))

  # ---- ops with axes
  def _reduce(self, eqn, x, op):
    axes = eqn.params['axes']
    aval = eqn.outvars[0].aval
    name = self.get(x)
    stored = [i for i, p in enumerate(x.perm) if p in axes]
    if op == 'ReduceSum':
      out = self.g.node(op, [name, self.g.constant(stored, np.int64)], keepdims=0)
    else:
      out = self.g.node(op, [name], axes=stored, keepdims=0)
    return self.tensor(aval, out, _without(x.perm, axes))

  def p_reduce_sum(self, eqn, x):
    return self._reduce(eqn, x, 'ReduceSum')

  def p_reduce_max(self, eqn, x):
    return self._reduce(eqn, x, 'ReduceMax')

  def p_reduce_min(self, eqn, x):
    return self._reduce(eqn, x, 'ReduceMin')

  def p_argmax(self, eqn, x):
    (axis,) = eqn.params['axes']
    aval = eqn.outvars[0].aval
    name = self.get(x)
    out = self.g.node('ArgMax', [name], axis=x.perm.index(axis), keepdims=0,
                      select_last_index=0)
    return self.tensor(aval, self.g.node('Cast', [out], to=_onnx_type(aval.dtype)),
                       _without(x.perm, (axis,)))

  def p_concatenate(self, eqn, *xs):
    aval, axis = eqn.outvars[0].aval, eqn.params['dimension']
    perm = next((v for v in xs if v.const is None and v.bcast is None), xs[0]).perm
    names = [self.get(v, perm) for v in xs]
    return self.tensor(aval, self.g.node('Concat', names, axis=perm.index(axis)), perm)

  def p_pad(self, eqn, x, value):
    config = eqn.params['padding_config']
    if any(interior for _, _, interior in config):
      raise NotImplementedError('pad with interior padding')
    if value.const is None:
      raise NotImplementedError('pad with a computed padding value')
    aval = eqn.outvars[0].aval
    name = self.get(x)
    lo = [config[p][0] for p in x.perm]
    hi = [config[p][1] for p in x.perm]
    out = self.g.node('Pad', [name, self.g.shape(lo + hi),  # negative pads crop, as lax's
                              self.g.constant(np.asarray(value.const, x.dtype))],
                      mode='constant')
    return self.tensor(aval, out, x.perm)

  def p_rev(self, eqn, x):
    dims = eqn.params['dimensions']
    name = self.get(x)
    stored = [x.perm.index(d) for d in dims]
    n = len(stored)
    out = self.g.node('Slice', [name, self.g.constant([-1] * n, np.int64),
                                self.g.constant([np.iinfo(np.int64).min] * n, np.int64),
                                self.g.constant(stored, np.int64),
                                self.g.constant([-1] * n, np.int64)])
    return self.tensor(eqn.outvars[0].aval, out, x.perm)

  def p_slice(self, eqn, x):
    starts, limits = eqn.params['start_indices'], eqn.params['limit_indices']
    strides = eqn.params['strides'] or [1] * x.rank
    name = self.get(x)
    axes = [i for i, p in enumerate(x.perm)
            if not (starts[p] == 0 and strides[p] == 1 and _same(limits[p], x.shape[p]))]
    ps = [x.perm[i] for i in axes]
    out = self.g.node('Slice', [name, self.g.shape([starts[p] for p in ps]),
                                self.g.shape([limits[p] for p in ps]),
                                self.g.constant(axes, np.int64),
                                self.g.constant([strides[p] for p in ps], np.int64)])
    return self.tensor(eqn.outvars[0].aval, out, x.perm)

  def _slice_at(self, eqn, x, starts, sizes):
    """XLA's dynamic slice: ``starts`` (int64 [1] names per logical axis) clamped into
    ``[0, dim - size]``."""
    name = self.get(x)
    begin, end = [], []
    for p in x.perm:
      limit = self.g.node('Sub', [self.g.dim(x.shape[p]), self.g.dim(sizes[p])])
      s = self.g.node('Min', [self.g.node('Max', [starts[p], self.g.constant([0], np.int64)]),
                              limit])
      begin.append(s)
      end.append(self.g.node('Add', [s, self.g.dim(sizes[p])]))
    out = self.g.node('Slice', [name, self.g.node('Concat', begin, axis=0),
                                self.g.node('Concat', end, axis=0)])
    return self.tensor(eqn.outvars[0].aval, out, x.perm)

  def _index(self, v: _Value, i=None) -> str:
    """Element ``i`` of an integer value (a scalar when ``i`` is None) as an int64 [1]."""
    if v.const is not None:
      c = np.asarray(v.const).reshape(-1)
      return self.g.constant([int(c[0 if i is None else i])], np.int64)
    name = self.get(v, tuple(range(v.rank)))
    if i is not None:
      name = self.g.node('Slice', [name, self.g.constant([i], np.int64),
                                   self.g.constant([i + 1], np.int64)])
    return self.g.node('Cast', [self.g.node('Reshape', [name, self.g.constant([1], np.int64)])],
                       to=TensorProto.INT64)

  def p_dynamic_slice(self, eqn, x, *starts):
    return self._slice_at(eqn, x, [self._index(s) for s in starts], eqn.params['slice_sizes'])

  def p_gather(self, eqn, x, indices):
    dn = eqn.params['dimension_numbers']
    sizes = eqn.params['slice_sizes']
    if (dn.collapsed_slice_dims or dn.operand_batching_dims or
        tuple(dn.offset_dims) != tuple(range(x.rank)) or indices.rank != 1):
      raise NotImplementedError(f'gather other than a dynamic slice: {dn}')
    zero = self.g.constant([0], np.int64)
    starts = [zero] * x.rank
    for k, axis in enumerate(dn.start_index_map):
      starts[axis] = self._index(indices, k)
    return self._slice_at(eqn, x, starts, sizes)

  def p_scatter_add(self, eqn, x, indices, updates):
    dn = eqn.params['dimension_numbers']
    if (dn.inserted_window_dims or dn.operand_batching_dims or indices.const is None
        or tuple(dn.update_window_dims) != tuple(range(x.rank))):
      raise NotImplementedError(f'scatter-add other than adding a window at a constant '
                                f'place: {dn}')
    start = [0] * x.rank
    for k, axis in enumerate(dn.scatter_dims_to_operand_dims):
      start[axis] = int(np.asarray(indices.const).reshape(-1)[k])
    lo, hi = [], []
    for p in x.perm:
      if start[p] == 0 and _same(updates.shape[p], x.shape[p]):
        lo.append(0)
        hi.append(0)
      elif not _is_static(x.shape[p], updates.shape[p]):
        raise NotImplementedError('scatter-add along a symbolic axis')
      else:
        lo.append(start[p])
        hi.append(x.shape[p] - start[p] - updates.shape[p])
    # x + the window padded with zeros: x's own values where the window is not
    padded = self.g.node('Pad', [self.get(updates, x.perm), self.g.constant(lo + hi, np.int64),
                                 self.g.constant(np.zeros((), x.dtype))], mode='constant')
    out = self.g.node('Add', [self.get(x), padded])
    return self.tensor(eqn.outvars[0].aval, out, x.perm)

  def p_cond(self, eqn, index, *args):
    """Both branches, then a Where: jseg's conds are tiny and side-effect free."""
    branches = eqn.params['branches']
    if index.const is not None:
      k = int(np.clip(np.asarray(index.const), 0, len(branches) - 1))
      return self.run(branches[k].jaxpr, branches[k].consts, args)
    if len(branches) != 2:
      raise NotImplementedError('cond with more than two branches')
    outs = [self.run(b.jaxpr, b.consts, args) for b in branches]
    pred = self.g.node('Cast', [self.get(index)], to=TensorProto.BOOL)
    result = []
    for var, o0, o1 in zip(eqn.outvars, *outs):
      name = self.g.node('Where', [pred, self.get(o1, o0.perm), self.get(o0, o0.perm)])
      result.append(self.tensor(var.aval, name, o0.perm))
    return result

  # ---- the heavy ops
  def p_conv_general_dilated(self, eqn, x, w):
    p = eqn.params
    dn = p['dimension_numbers']
    if any(d != 1 for d in p['lhs_dilation'] or ()) or p['batch_group_count'] != 1:
      raise NotImplementedError('transposed or batch-grouped convolutions')
    aval = eqn.outvars[0].aval
    lhs = self.get(x, tuple(dn.lhs_spec))
    rhs = self.get(w, tuple(dn.rhs_spec))
    pads = [lo for lo, _ in p['padding']] + [hi for _, hi in p['padding']]
    out = self.g.node('Conv', [lhs, rhs], strides=list(p['window_strides']), pads=pads,
                      dilations=list(p['rhs_dilation'] or [1] * len(p['window_strides'])),
                      group=p['feature_group_count'])
    return self.tensor(aval, out, tuple(dn.out_spec))

  def p_reduce_window_max(self, eqn, x):
    p = eqn.params
    window = p['window_dimensions']
    pooled = [i for i, k in enumerate(window) if k != 1 or p['window_strides'][i] != 1]
    if (any(d != 1 for d in p['base_dilation']) or len(pooled) > 3
        or pooled != sorted(pooled)):
      raise NotImplementedError('reduce_window_max other than a max pool')
    perm = tuple(i for i in range(x.rank) if i not in pooled) + tuple(pooled)
    if x.rank - len(pooled) != 2:
      raise NotImplementedError('max pool over other than the spatial axes of a 4-d tensor')
    out = self.g.node('MaxPool', [self.get(x, perm)],
                      kernel_shape=[window[i] for i in pooled],
                      strides=[p['window_strides'][i] for i in pooled],
                      dilations=[p['window_dilation'][i] for i in pooled],
                      pads=[p['padding'][i][0] for i in pooled] +
                      [p['padding'][i][1] for i in pooled])
    return self.tensor(eqn.outvars[0].aval, out, perm)

  def p_dot_general(self, eqn, x, y):
    """An Einsum in the stored orders (no Transpose), or a MatMul (:meth:`_matmul`); the output
    stored in the order of the leading operand (laid out on purpose, else the larger), the
    other's free axes where its contracted ones were."""
    (xc, yc), (xb, yb) = eqn.params['dimension_numbers']
    aval = eqn.outvars[0].aval
    letters = iter('abcdefghijklmnopqrstuvwxyz')
    xl = [next(letters) for _ in range(x.rank)]
    yl = [None] * y.rank
    for i, j in zip(xc, yc):
      yl[j] = xl[i]
    for i, j in zip(xb, yb):
      yl[j] = xl[i]
    yl = [l or next(letters) for l in yl]
    x_free = [i for i in range(x.rank) if i not in xc and i not in xb]
    y_free = [j for j in range(y.rank) if j not in yc and j not in yb]
    out_letters = [xl[i] for i in xb] + [xl[i] for i in x_free] + [yl[j] for j in y_free]
    # Follow the operand laid out on purpose (a convolution's NCHW), else the larger.
    laid_out = [v.const is None and v.perm != tuple(range(v.rank)) for v in (x, y)]
    x_leads = laid_out[0] if laid_out[0] != laid_out[1] else _numel(x) >= _numel(y)
    big, big_l = (x, xl) if x_leads else (y, yl)
    stored_big = [big_l[p] for p in big.perm]
    contracted = [l for l in big_l if l not in out_letters]
    anchor = min((stored_big.index(l) for l in contracted), default=len(stored_big))

    def key(k):
      l = out_letters[k]
      return (stored_big.index(l), 0, k) if l in stored_big else (anchor, 1, k)

    out_perm = tuple(sorted(range(len(out_letters)), key=key))
    small, small_l = (y, yl) if x_leads else (x, xl)
    if (small.rank == 2 and big.rank >= 3 and len(contracted) == 1 and not xb
        and stored_big.index(contracted[0]) >= big.rank - 2):
      return self._matmul(aval, big, stored_big, small, small_l, contracted[0], out_letters)
    equation = (''.join(xl[p] for p in x.perm) + ',' + ''.join(yl[p] for p in y.perm) + '->'
                + ''.join(out_letters[k] for k in out_perm))
    out = self.g.node('Einsum', [self.get(x), self.get(y)], equation=equation)
    return self.tensor(aval, out, out_perm)

  def _matmul(self, aval, big, stored_big, matrix, matrix_l, c, out_letters):
    """A matrix applied along one of the last two stored axes of ``big`` (the resizes' and
    adaptive poolings' weights): a MatMul, which runtimes run faster than an Einsum, the
    new axis where the contracted one was."""
    m = next(l for l in matrix_l if l != c)
    last = stored_big.index(c) == big.rank - 1
    # x @ W with W (c, m) along the last axis, W (m, c) @ x along the one before
    order = [matrix_l.index(c), matrix_l.index(m)] if last else [matrix_l.index(m),
                                                                  matrix_l.index(c)]
    weights = self.get(matrix, order)
    data = self.get(big)
    out = self.g.node('MatMul', [data, weights] if last else [weights, data])
    stored_out = [m if l == c else l for l in stored_big]
    return self.tensor(aval, out, tuple(out_letters.index(l) for l in stored_out))


def _without(perm, axes):
  """The stored order ``perm`` once ``axes`` are gone, the remaining axes renumbered."""
  keep = [p for p in perm if p not in axes]
  rank = {p: i for i, p in enumerate(sorted(keep))}
  return [rank[p] for p in keep]


def _numel(v: _Value) -> float:
  n = 1.0
  for d in v.shape:
    n *= d if _is_static(d) else 1e4  # symbolic sizes count as large
  return n


def _same(a, b) -> bool:
  try:
    return bool(a == b)
  except jax.errors.JAXTypeError:
    return False


def _at_most(a, b) -> Optional[bool]:
  """``a <= b``; None when undecidable for symbolic sizes."""
  try:
    return bool(a <= b)
  except Exception:  # noqa: BLE001  jax's InconclusiveDimensionOperation
    return None


def _reshape_groups(shape_in, shape_out):
  """[(in axes, out axes)] when the reshape only merges / splits neighbouring axes, size-1
  axes aside (an output one is a group ``((), (k,))``, an input one belongs to none); None
  otherwise."""
  one = lambda d: _is_static(d) and d == 1
  ins = [i for i, d in enumerate(shape_in) if not one(d)]
  outs = [j for j, d in enumerate(shape_out) if not one(d)]
  groups = [((), (j,)) for j, d in enumerate(shape_out) if one(d)]
  i = j = 0
  while i < len(ins) and j < len(outs):
    gi, gj = [ins[i]], [outs[j]]
    a, b = shape_in[ins[i]], shape_out[outs[j]]
    i, j = i + 1, j + 1
    while not _same(a, b):
      grow_in = _at_most(a, b)
      if grow_in is None and _at_most(b, a) is None:
        return None
      if grow_in and i < len(ins):
        a, i = a * shape_in[ins[i]], i + 1
        gi.append(ins[i - 1])
      elif not grow_in and j < len(outs):
        b, j = b * shape_out[outs[j]], j + 1
        gj.append(outs[j - 1])
      else:
        return None
    groups.append((tuple(gi), tuple(gj)))
  return groups if i == len(ins) and j == len(outs) else None


def to_onnx(fn: Callable, spec: jax.ShapeDtypeStruct, input_name: str = 'images',
            output_name: str = 'output', doc: str = '') -> onnx.ModelProto:
  """The ONNX model of ``fn`` (one array in, one out) for inputs of ``spec``, whose symbolic
  dimensions stay dynamic (``b``, ``h``, ``16*h``: a variable times a whole number)."""
  closed = jax.make_jaxpr(fn)(spec)
  g = _Graph()
  dims = []
  for axis, d in enumerate(spec.shape):
    if _is_static(d):
      dims.append(int(d))
      continue
    terms = d._sorted_terms
    factors = terms[0][0]._factors if len(terms) == 1 else ()
    if len(factors) != 1 or factors[0][0].var is None or factors[0][1] != 1:
      raise ValueError(f'input dimension {d}: give a variable times a whole number')
    factor, coeff = factors[0][0], terms[0][1]
    g.dim_vars.setdefault(factor.var, (input_name, axis, coeff))
    dims.append(str(d))
  lowering = _Lowering(g)
  x = _Value(spec.shape, spec.dtype, name=input_name)
  (out,) = lowering.run(closed.jaxpr, closed.consts, [x])
  result = lowering.get(out, tuple(range(out.rank)))
  g.nodes.append(helper.make_node('Identity', [result], [output_name], name=output_name))
  out_dims = [int(d) if _is_static(d) else str(d) for d in out.shape]
  graph = helper.make_graph(
      g.nodes, 'jseg', [helper.make_tensor_value_info(input_name, _onnx_type(spec.dtype), dims)],
      [helper.make_tensor_value_info(output_name, _onnx_type(out.dtype), out_dims)],
      initializer=g.initializers)
  model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', OPSET)],
                            producer_name='jseg', doc_string=doc)
  model.ir_version = IR_VERSION
  return model
