"""Global-norm gradient clipping, the same factor on every device, without a sync per step."""
from __future__ import annotations

from typing import Optional

import mxnet as mx


def global_norm(params: list, ctx: mx.Context) -> mx.nd.NDArray:
    """The L2 norm of every parameter's gradient on ctx together, as a 1-element array."""
    grads = [p.grad(ctx).as_nd_ndarray() for p in params]
    return mx.nd.sqrt(mx.nd.sum(mx.nd.multi_sum_sq(*grads, num_arrays=len(grads))))


class GradClip:
    """Scales each step's gradient down to `max_norm` (global L2 norm of the mean batch loss's
    gradient) where it is longer, and counts the steps it did so."""

    def __init__(self, params: list, ctx: mx.Context, max_norm: float):
        self.params, self.ctx, self.max_norm = params, ctx, max_norm
        self.last_norm: Optional[mx.nd.NDArray] = None  # the last step's, before clipping
        self.reset()

    def reset(self) -> None:
        self._clipped = mx.nd.zeros(1, ctx=self.ctx)

    def __call__(self, batch_size: float) -> None:
        """Clip this step's gradients (after the devices' gradients were summed into each copy,
        so device 0's norm is the whole batch's). With a loss scale, pass batch_size x scale."""
        norm = global_norm(self.params, self.ctx) / batch_size
        self.last_norm = norm
        self._clipped = self._clipped + (norm > self.max_norm)
        factor = mx.nd.minimum(self.max_norm / norm, mx.nd.ones(1, ctx=self.ctx))
        for p in self.params:
            for g in p.list_grad():
                g = g.as_nd_ndarray()
                mx.nd.broadcast_mul(g, factor.as_in_context(g.context), out=g)

    def clipped_steps(self) -> int:
        """Steps clipped since reset (synchronises once)."""
        return int(self._clipped.asscalar())
