"""jseg.onnx_lowering on its own: symbolic sizes lowered to the graph (strided convolutions,
floor divisions, the (N, H * W, C) reshape that jax2onnx gets wrong), layouts (no Transpose
around convolutions), float64 agreement to rounding through ONNX's own reference evaluator,
and what it refuses, by name."""
import jax
import jax.numpy as jnp
import numpy as np
import onnxruntime
import pytest
from jax import lax
from onnx.reference import ReferenceEvaluator

from jseg import onnx_lowering
from jseg.models import layers

SIZES = ((23, 37), (40, 17), (9, 64))


def _spec(dtype=jnp.float32, channels=3):
  return jax.ShapeDtypeStruct((*jax.export.symbolic_shape('b, h, w'), channels), dtype)


def _conv(x, w, stride=1, padding=1):
  return lax.conv_general_dilated(x, w, (stride, stride), [(padding, padding)] * 2,
                                  dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


def _run(model, x):
  session = onnxruntime.InferenceSession(model.SerializeToString(),
                                         providers=['CPUExecutionProvider'])
  return session.run(None, {'images': x})[0]


def _backbone_and_attention(x, w1, w2, w3):
  """Three stride-2 convolutions (sizes floordiv(floordiv(floordiv(h - 1, 2), 2), 2) + 1),
  max pooling, a non-local block's reshapes and a resize back to the input size."""
  y = jax.nn.relu(_conv(x, w1, 2))
  y = lax.reduce_window(jnp.pad(y, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-jnp.inf),
                        -jnp.inf, lax.max, (1, 3, 3, 1), (1, 2, 2, 1), 'VALID')
  y = jax.nn.relu(_conv(y, w2, 2))
  n, h, w, c = y.shape
  flat = y.reshape(n, h * w, c)
  attention = jax.nn.softmax(jnp.einsum('nqc,nkc->nqk', flat, flat), axis=-1)
  y = y + jnp.einsum('nqk,nkc->nqc', attention, flat).reshape(n, h, w, c)
  y = _conv(y, w3, 1, 0)
  return layers.resize(y, x.shape[1:3], align_corners=False)


def test_symbolic_sizes_and_layouts_equal_jax_at_every_size():
  keys = jax.random.split(jax.random.key(0), 3)
  ws = [0.3 * jax.random.normal(k, s) for k, s in zip(keys, [(3, 3, 3, 8), (3, 3, 8, 8),
                                                              (1, 1, 8, 5)])]
  fn = lambda x: _backbone_and_attention(x, *ws)
  model = onnx_lowering.to_onnx(fn, _spec())
  ops = [n.op_type for n in model.graph.node]
  assert ops.count('Conv') == 3 and ops.count('MaxPool') == 1
  # NHWC -> NCHW once at the input, back once at the output; the (N, H * W, C) reshape of an
  # NCHW tensor is a reshape of (N, C, H, W) to (N, C, H * W): no Transpose of a feature map
  # (the resize's W-pass weights, a small matrix, are transposed for its MatMul).
  perms = [list(n.attribute[0].ints) for n in model.graph.node if n.op_type == 'Transpose']
  assert [p for p in perms if len(p) > 2] == [[0, 3, 1, 2], [0, 2, 3, 1]], perms
  assert ops.count('MatMul') == 2 and ops.count('Einsum') == 2  # the resize, the attention
  assert [d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim[:3]] == \
      ['b', 'h', 'w']
  for i, size in enumerate(SIZES):
    x = np.asarray(jax.random.normal(jax.random.key(i), (1 + i % 2, *size, 3)))
    want = np.asarray(jax.jit(fn)(x))
    got = _run(model, x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_resize_and_adaptive_pooling_weights_in_the_graph_equal_jax():
  """The interpolation and pooling matrices are computed in the graph from the input's size
  (floor, integer division and remainder of symbolic sizes): bit-equal weights, so the
  outputs agree to float32 rounding at sizes the export never saw."""

  def fn(x):
    pooled = [layers.resize(layers.adaptive_avg_pool(x, (b, b)), x.shape[1:3],
                            align_corners=ac) for b, ac in ((1, False), (3, True), (6, False))]
    up = layers.resize(x, scale_factor=2, align_corners=True)
    return jnp.concatenate(pooled + [lax.slice(up, (0, 0, 0, 0), up.shape, (1, 2, 2, 1))], axis=-1)

  model = onnx_lowering.to_onnx(fn, _spec())
  for i, size in enumerate(SIZES):
    x = np.asarray(jax.random.normal(jax.random.key(i), (1, *size, 3)))
    np.testing.assert_allclose(_run(model, x), np.asarray(jax.jit(fn)(x)), rtol=2e-6,
                               atol=2e-6)


def test_float64_graph_equals_jax_to_rounding():
  """float64 through ONNX's reference evaluator (numpy, independent of ONNX Runtime): a right
  lowering agrees to ~1e-15, float32 noise cannot hide a wrong one."""
  with jax.enable_x64(True):
    keys = jax.random.split(jax.random.key(0), 3)
    ws = [0.3 * jax.random.normal(k, s, jnp.float64)
          for k, s in zip(keys, [(3, 3, 3, 4), (3, 3, 4, 4), (1, 1, 4, 3)])]
    fn = lambda x: _backbone_and_attention(x, *ws)
    model = onnx_lowering.to_onnx(fn, _spec(jnp.float64))
    evaluator = ReferenceEvaluator(model)
    for i, size in enumerate(SIZES[:2]):
      x = np.asarray(jax.random.normal(jax.random.key(i), (1, *size, 3), jnp.float64))
      want = np.asarray(jax.jit(fn)(x))
      (got,) = evaluator.run(None, {'images': x})
      assert got.dtype == np.float64
      assert np.abs(got - want).max() <= 1e-12 * np.abs(want).max()


def test_what_it_cannot_lower_is_named():
  with pytest.raises(NotImplementedError, match="jax primitive 'cumsum' has no lowering"):
    onnx_lowering.to_onnx(lambda x: jnp.cumsum(x, axis=1), _spec())
  with pytest.raises(ValueError, match='input dimension h \\+ 1: give a variable times'):
    onnx_lowering.to_onnx(lambda x: x, jax.ShapeDtypeStruct(
        (*jax.export.symbolic_shape('b, h + 1, w'), 3), jnp.float32))
