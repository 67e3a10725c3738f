"""Independent NumPy references written from the formulas in docs/formulas.md, in float64.

They share no code with the package: loops over the formula's indices where that is cheap, and
a different vectorisation of the sinusoid (exp/log, as the PyTorch reference writes it).
"""

import math

import numpy as np
import pytest

TORCH_SKIP_REASON = (
    "PyTorch is not installed: this comparison with torch's own layers needs it "
    "(pip install torch); the NumPy references above run without it"
)


def torch_or_skip(seed):
    """The `torch` module with its random generator seeded, or a skip that says why."""
    torch = pytest.importorskip("torch", reason=TORCH_SKIP_REASON)
    torch.manual_seed(seed)
    return torch


def circular_conv1d(x, kernel, bias=None):
    """`y[b,t,o] = sum_{j,c} W[j,c,o] * x[b,(t+j-p) mod L,c] (+ bias[o])`, p = (k-1)/2."""
    x = np.asarray(x, np.float64)
    kernel = np.asarray(kernel, np.float64)
    batch, length, _ = x.shape
    kernel_size = kernel.shape[0]
    pad = (kernel_size - 1) // 2
    y = np.zeros((batch, length, kernel.shape[2]))
    for t in range(length):
        for j in range(kernel_size):
            y[:, t, :] += x[:, (t + j - pad) % length, :] @ kernel[j]
    if bias is not None:
        y += np.asarray(bias, np.float64)
    return y


def sinusoid(num_positions, d_model):
    """`pe[p, 2i] = sin(p w_i)`, `pe[p, 2i+1] = cos(p w_i)`, `w_i = exp(-2i ln(10000) / D)`."""
    position = np.arange(num_positions, dtype=np.float64)[:, None]
    div_term = np.exp(np.arange(0, d_model, 2, dtype=np.float64) * -(math.log(10000.0) / d_model))
    pe = np.zeros((num_positions, d_model))
    pe[:, 0::2] = np.sin(position * div_term)
    pe[:, 1::2] = np.cos(position * div_term)[:, : d_model // 2]
    return pe


def prob_attention(q, k, v, sample, n_top, causal):
    """TSLib's ProbAttention on `(B, L, H, E)` arrays, float64, heads-first `(B, H, L_Q, D)`:
    the `n_top` queries of largest sparsity measure on the keys `sample` (per query) attend in
    full (causally: keys up to the query), the others take the mean of the values (causally:
    their cumulative sum)."""
    q, k, v = (np.transpose(a, (0, 2, 1, 3)).astype(np.float64) for a in (q, k, v))
    batch, heads, L_Q, depth = q.shape
    L_K = k.shape[2]
    context = np.cumsum(v, axis=2) if causal else np.repeat(v.mean(2, keepdims=True), L_Q, 2)
    for b in range(batch):
        for h in range(heads):
            measured = np.einsum("qe,qse->qs", q[b, h], k[b, h][sample])
            sparsity = measured.max(-1) - measured.sum(-1) / L_K
            for i in np.argsort(-sparsity)[:n_top]:
                scores = k[b, h] @ q[b, h, i] / math.sqrt(depth)
                if causal:
                    scores[i + 1 :] = -np.inf
                weights = np.exp(scores - scores.max())
                context[b, h, i] = weights / weights.sum() @ v[b, h]
    return context
