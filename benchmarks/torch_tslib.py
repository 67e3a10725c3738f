"""iTransformer, PatchTST, Transformer, Informer in PyTorch, as Time-Series-Library composes them.

Written from TSLib's `models/{iTransformer,PatchTST,Transformer,Informer}.py`,
`layers/SelfAttention_Family.py`, `layers/Transformer_EncDec.py`, `layers/Embed.py` and
`utils/masking.py`, long-term-forecast path only (`task_name` long_term_forecast or
short_term_forecast). Every module keeps TSLib's attribute names, so `model.state_dict()` has the
keys and shapes of the `checkpoint.pth` TSLib's run.py saves for the same flags (`module.` in
front of each key when run.py trained with `--use_multi_gpu`). Each model takes a run.py-like
`configs` object and/or run.py's flag names as keywords, unset flags taking run.py's defaults
(`RUN_PY_DEFAULTS`, read from `tslib_run_py_defaults.txt`, which also says which flags change
which model's forward pass), and `forward(x_enc, x_mark_enc, x_dec, x_mark_dec)` returns
`(B, pred_len, c_out)` as TSLib's does (iTransformer and PatchTST: `(B, pred_len, N)`, N the
input's channels). `build(name, configs=None, **flags)` builds one by TSLib's model name.
`benchmarks/torch_timesnet.py` is TimesNet (its own names; its row below maps them). Needs torch.

state_dict keys, per piece then per model. `{i}` an encoder layer, `{j}` a decoder layer, `{k}` a
distil ConvLayer (0 .. e_layers - 2), `{emb}` enc_embedding or dec_embedding, `{attn}` an
AttentionLayer's prefix; `.*` is `.weight` and `.bias`; BN = BatchNorm1d, whose keys are `weight,
bias, running_mean, running_var, num_batches_tracked`. Shapes are PyTorch's: Linear `(out, in)`,
Conv1d `(out, in, kernel)`.

  AttentionLayer    {attn}.query_projection.*, key_projection.*, value_projection.*,
                    out_projection.*                               (d_model, d_model), (d_model,)
  EncoderLayer      encoder.attn_layers.{i}.attention.<AttentionLayer>
                    encoder.attn_layers.{i}.conv1.*                (d_ff, d_model, 1)
                    encoder.attn_layers.{i}.conv2.*                (d_model, d_ff, 1)
                    encoder.attn_layers.{i}.norm1.*, .norm2.*      LayerNorm (d_model,)
  DecoderLayer      decoder.layers.{j}.self_attention.<AttentionLayer>
                    decoder.layers.{j}.cross_attention.<AttentionLayer>
                    decoder.layers.{j}.conv1.*, .conv2.*, .norm1.*, .norm2.*, .norm3.*
  DataEmbedding     {emb}.value_embedding.tokenConv.weight         (d_model, c_in, 3), no bias
                    {emb}.position_embedding.pe                    buffer (1, 5000, d_model)
    embed='timeF'   {emb}.temporal_embedding.embed.weight          (d_model, FREQ_MAP[freq])
    embed='fixed'   {emb}.temporal_embedding.{month,day,weekday,hour}_embed.emb.weight
                                                 (13 | 32 | 7 | 24, d_model), requires_grad False
                    + minute_embed.emb.weight (4, d_model) only when freq == 't'
    'learned'       the same keys without `.emb` (any embed other than timeF and fixed)

  iTransformer      enc_embedding.value_embedding.*                (d_model, seq_len)
                    EncoderLayer x e_layers; encoder.norm.* (LayerNorm)
                    projection.*                                   (pred_len, d_model)
  PatchTST          patch_embedding.value_embedding.weight         (d_model, 16), no bias
                    patch_embedding.position_embedding.pe          buffer (1, 5000, d_model)
                    EncoderLayer x e_layers; encoder.norm.1.<BN>   (Sequential(Transpose, BN,
                                                                   Transpose): index 1)
                    head.linear.*                    (pred_len, d_model * patch_num), patch_num =
                                                     int((seq_len - 16) / 8 + 2)
  Transformer       enc_embedding.<DataEmbedding>; EncoderLayer x e_layers; encoder.norm.*;
                    dec_embedding.<DataEmbedding>; DecoderLayer x d_layers; decoder.norm.*;
                    decoder.projection.*                           (c_out, d_model)
  Informer          Transformer's keys, and when distil (run.py's default):
                    encoder.conv_layers.{k}.downConv.*             (d_model, d_model, 3)
                    encoder.conv_layers.{k}.norm.<BN>
  TimesNet (TSLib)  enc_embedding.<DataEmbedding>; model.{i}.conv.{0,2}.kernels.{n}.* (Conv2d,
                    kernel 2n + 1); layer_norm.*; predict_linear.* (seq_len + pred_len, seq_len);
                    projection.* (c_out, d_model). benchmarks/torch_timesnet.py names these
                    token, time_features, position (seq_len rows, not pe), blocks.{i}.conv...,
                    layer_norm, predict_linear, projection.

TSLib subtleties kept here (a port must do the same):
- Informer's three attentions are all ProbAttention: encoder self (mask_flag False), decoder self
  (mask_flag True: ProbMask on the selected queries, cumulative SUM of values as the context of
  the others) and decoder cross (mask_flag False: the mean of the values for unselected queries).
  Informer2020's decoder cross attention is FullAttention; TSLib's is not.
- TSLib's AttentionLayer has no `mix` flag, and ProbAttention returns its context heads-first
  `(B, H, L, D)`, which AttentionLayer's `view(B, L, -1)` reads as `(B, L, H * D)`: every
  ProbAttention output is "mixed" (Informer2020's mix=True), in the encoder too. FullAttention
  returns `(B, L, H, D)`, so Transformer, iTransformer and PatchTST are not.
- ProbAttention: its attention dropout is never applied; the sparsity measure is
  `max(QK_sample) - sum(QK_sample) / L_K` (divided by L_K, not by the sample count); u =
  factor * ceil(ln L_Q) queries (at most L_Q) and factor * ceil(ln L_K) sampled keys (at most
  L_K), drawn with `torch.randint(L_K, (L_Q, sample_k))` from the global RNG in eval mode too.
  TSLib's `.squeeze()` of the sampled scores breaks for B, H or the sample size 1; here
  `squeeze(-2)` (the same result otherwise).
- Informer's distil ConvLayer: Conv1d(k=3, padding=2, circular) then MaxPool1d(3, 2, 1), so an
  encoder length L becomes floor((L + 1) / 2) + 1 (96 -> 49 -> 26), not Informer2020's L / 2.
- PatchTST's patch_len=16 and stride=8 are constructor defaults; run.py's --patch_len (TimeXer)
  does not reach it. FlattenHead flattens (d_model, patch_num), patch fastest. c_out is ignored.
- iTransformer appends x_mark_enc's columns as extra tokens and drops them after the projection.

Deterministic ProbAttention, for comparing a port: `prob_attention_sample(L_Q, L_K, sample_k,
generator)` draws the key indices `(L_Q, sample_k)`; each ProbAttention calls it (with its
`generator`, None = the global RNG: the same draws as TSLib after the same `torch.manual_seed`)
unless its `sampler` is set, a callable `(L_Q, L_K, sample_k) -> LongTensor (L_Q, sample_k)`
(`set_prob_attention_sampler(model, sampler)` sets all of a model's). The indices a call used are
kept as `last_sample`; Informer draws in the order encoder layers 0.., then per decoder layer its
self then cross attention, so a TensorFlow port given the same indices computes the same output.
"""

import ast
import math
import pathlib
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

DEFAULTS_FILE = pathlib.Path(__file__).with_name("tslib_run_py_defaults.txt")
FREQ_MAP = {"h": 4, "t": 5, "s": 6, "m": 1, "a": 1, "w": 2, "d": 3, "b": 3}


def _read_defaults(path=DEFAULTS_FILE):
    """`{flag: default}` from the defaults table (lines `flag | type | default | effect`)."""
    defaults = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            flag, _, default, _ = (field.strip() for field in line.split("|", 3))
            defaults[flag] = ast.literal_eval(default)
    return defaults


RUN_PY_DEFAULTS = _read_defaults()


def _configs(configs, flags):
    """run.py's defaults, overridden by `configs`' attributes, then by keyword flags."""
    merged = {**RUN_PY_DEFAULTS, **(vars(configs) if configs is not None else {}), **flags}
    if merged["task_name"] not in ("long_term_forecast", "short_term_forecast"):
        raise ValueError(f"only the forecast path is written; task_name={merged['task_name']!r}")
    if merged["output_attention"]:
        raise ValueError("output_attention=True is not supported")
    return SimpleNamespace(**merged)


def normalised(x):
    """The Non-stationary Transformer normalisation: `(x - mean) / stdev, mean, stdev` over time."""
    means = x.mean(1, keepdim=True).detach()
    x = x - means
    stdev = torch.sqrt(torch.var(x, dim=1, keepdim=True, unbiased=False) + 1e-5)
    return x / stdev, means, stdev


# --- layers/Embed.py --------------------------------------------------------------------------


def sinusoid_table(rows, d_model):
    position = torch.arange(rows).float()[:, None]
    rate = (torch.arange(0, d_model, 2).float() * -(math.log(10000.0) / d_model)).exp()
    table = torch.zeros(rows, d_model)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate)
    return table


class PositionalEmbedding(nn.Module):
    def __init__(self, d_model, max_len=5000):
        super().__init__()
        self.register_buffer("pe", sinusoid_table(max_len, d_model)[None])  # in the state_dict

    def forward(self, x):
        return self.pe[:, : x.size(1)]


class TokenEmbedding(nn.Module):
    def __init__(self, c_in, d_model):
        super().__init__()
        self.tokenConv = nn.Conv1d(c_in, d_model, 3, padding=1, padding_mode="circular", bias=False)
        nn.init.kaiming_normal_(self.tokenConv.weight, mode="fan_in", nonlinearity="leaky_relu")

    def forward(self, x):
        return self.tokenConv(x.permute(0, 2, 1)).transpose(1, 2)


class FixedEmbedding(nn.Module):
    def __init__(self, c_in, d_model):
        super().__init__()
        self.emb = nn.Embedding(c_in, d_model)
        self.emb.weight = nn.Parameter(sinusoid_table(c_in, d_model), requires_grad=False)

    def forward(self, x):
        return self.emb(x).detach()


class TemporalEmbedding(nn.Module):
    """Integer marks `(month, day, weekday, hour[, minute])` in columns 0..4."""

    COLUMNS = {"month": 0, "day": 1, "weekday": 2, "hour": 3, "minute": 4}
    SIZES = {"minute": 4, "hour": 24, "weekday": 7, "day": 32, "month": 13}  # TSLib's order

    def __init__(self, d_model, embed_type="fixed", freq="h"):
        super().__init__()
        table = FixedEmbedding if embed_type == "fixed" else nn.Embedding
        self.fields = [f for f in self.SIZES if f != "minute" or freq == "t"]
        for field in self.fields:
            setattr(self, f"{field}_embed", table(self.SIZES[field], d_model))

    def forward(self, x):
        x, summed = x.long(), ("hour", "weekday", "day", "month", "minute")  # TSLib's sum order
        terms = [
            getattr(self, f"{f}_embed")(x[:, :, self.COLUMNS[f]])
            for f in summed
            if f in self.fields
        ]
        return sum(terms[1:], terms[0])


class TimeFeatureEmbedding(nn.Module):
    def __init__(self, d_model, freq="h"):
        super().__init__()
        self.embed = nn.Linear(FREQ_MAP[freq], d_model, bias=False)

    def forward(self, x):
        return self.embed(x)


class DataEmbedding(nn.Module):
    def __init__(self, c_in, d_model, embed_type="fixed", freq="h", dropout=0.1):
        super().__init__()
        self.value_embedding = TokenEmbedding(c_in, d_model)
        self.position_embedding = PositionalEmbedding(d_model)
        self.temporal_embedding = (
            TimeFeatureEmbedding(d_model, freq)
            if embed_type == "timeF"
            else TemporalEmbedding(d_model, embed_type, freq)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, x_mark):
        if x_mark is None:
            return self.dropout(self.value_embedding(x) + self.position_embedding(x))
        out = self.value_embedding(x) + self.temporal_embedding(x_mark)
        return self.dropout(out + self.position_embedding(x))


class DataEmbeddingInverted(nn.Module):
    """TSLib's DataEmbedding_inverted: each variable's (and mark column's) series is one token."""

    def __init__(self, c_in, d_model, dropout=0.1):
        super().__init__()
        self.value_embedding = nn.Linear(c_in, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, x_mark):
        x = x.permute(0, 2, 1)
        if x_mark is not None:
            x = torch.cat([x, x_mark.permute(0, 2, 1)], 1)
        return self.dropout(self.value_embedding(x))


class PatchEmbedding(nn.Module):
    def __init__(self, d_model, patch_len, stride, padding, dropout):
        super().__init__()
        self.patch_len, self.stride = patch_len, stride
        self.padding_patch_layer = nn.ReplicationPad1d((0, padding))
        self.value_embedding = nn.Linear(patch_len, d_model, bias=False)
        self.position_embedding = PositionalEmbedding(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):  # (B, N, L) -> (B * N, patch_num, d_model), N
        n_vars = x.shape[1]
        x = self.padding_patch_layer(x).unfold(-1, self.patch_len, self.stride)
        x = x.reshape(-1, x.shape[2], x.shape[3])
        return self.dropout(self.value_embedding(x) + self.position_embedding(x)), n_vars


# --- layers/SelfAttention_Family.py -----------------------------------------------------------


class FullAttention(nn.Module):
    def __init__(self, mask_flag=True, factor=5, scale=None, attention_dropout=0.1):
        super().__init__()
        self.mask_flag, self.scale = mask_flag, scale
        self.dropout = nn.Dropout(attention_dropout)

    def forward(self, queries, keys, values, attn_mask=None):  # (B, L, H, E) -> (B, L, H, D)
        length = queries.shape[1]
        scale = self.scale or 1.0 / math.sqrt(queries.shape[-1])
        scores = torch.einsum("blhe,bshe->bhls", queries, keys)
        if self.mask_flag:
            causal = torch.ones(length, length, dtype=torch.bool, device=scores.device).triu(1)
            scores = scores.masked_fill(causal, -np.inf)
        weights = self.dropout(torch.softmax(scale * scores, dim=-1))
        return torch.einsum("bhls,bshd->blhd", weights, values).contiguous()


def prob_attention_sample(L_Q, L_K, sample_k, generator=None):
    """The keys each query is scored against to rank it: TSLib's draw, `(L_Q, sample_k)` indices."""
    return torch.randint(L_K, (L_Q, sample_k), generator=generator)


class ProbAttention(nn.Module):
    """Informer's ProbSparse attention; returns the context heads-first, `(B, H, L_Q, D)`."""

    def __init__(self, mask_flag=True, factor=5, scale=None, attention_dropout=0.1, sampler=None):
        super().__init__()
        self.mask_flag, self.factor, self.scale = mask_flag, factor, scale
        self.dropout = nn.Dropout(attention_dropout)  # TSLib never applies it
        self.sampler, self.generator, self.last_sample = sampler, None, None

    def forward(self, queries, keys, values, attn_mask=None):
        batch, L_Q, heads, depth = queries.shape
        L_K = keys.shape[1]
        q, k, v = (t.transpose(2, 1) for t in (queries, keys, values))  # (B, H, L, E)
        sample_k = min(self.factor * np.ceil(np.log(L_K)).astype("int").item(), L_K)
        n_top = min(self.factor * np.ceil(np.log(L_Q)).astype("int").item(), L_Q)
        if self.sampler is None:
            index = prob_attention_sample(L_Q, L_K, sample_k, self.generator)
        else:
            index = self.sampler(L_Q, L_K, sample_k)
        self.last_sample = index
        sampled = (q.unsqueeze(-2) @ k[:, :, index].transpose(-2, -1)).squeeze(-2)
        sparsity = sampled.max(-1)[0] - sampled.sum(-1) / L_K
        top = sparsity.topk(n_top, sorted=False)[1]  # (B, H, n_top)
        b, h = torch.arange(batch)[:, None, None], torch.arange(heads)[None, :, None]
        scores = (q[b, h, top] @ k.transpose(-2, -1)) * (self.scale or 1.0 / math.sqrt(depth))
        if self.mask_flag:
            assert L_Q == v.shape[2], "masked ProbAttention is self-attention only"
            context = v.cumsum(dim=-2)
            later = torch.ones(L_Q, L_K, dtype=torch.bool, device=v.device).triu(1)
            scores = scores.masked_fill(later[top], -np.inf)
        else:
            context = v.mean(dim=-2, keepdim=True).expand(-1, -1, L_Q, -1).clone()
        context[b, h, top] = (torch.softmax(scores, dim=-1) @ v).type_as(context)
        return context.contiguous()


def set_prob_attention_sampler(model, sampler):
    """Sets `sampler` on every ProbAttention of `model`; returns how many there are."""
    layers = [m for m in model.modules() if isinstance(m, ProbAttention)]
    for layer in layers:
        layer.sampler = sampler
    return len(layers)


class AttentionLayer(nn.Module):
    def __init__(self, attention, d_model, n_heads):
        super().__init__()
        self.inner_attention = attention
        self.query_projection = nn.Linear(d_model, d_model // n_heads * n_heads)
        self.key_projection = nn.Linear(d_model, d_model // n_heads * n_heads)
        self.value_projection = nn.Linear(d_model, d_model // n_heads * n_heads)
        self.out_projection = nn.Linear(d_model // n_heads * n_heads, d_model)
        self.n_heads = n_heads

    def forward(self, queries, keys, values, attn_mask=None):
        (batch, length, _), source, heads = queries.shape, keys.shape[1], self.n_heads
        out = self.inner_attention(
            self.query_projection(queries).view(batch, length, heads, -1),
            self.key_projection(keys).view(batch, source, heads, -1),
            self.value_projection(values).view(batch, source, heads, -1),
            attn_mask,
        )
        return self.out_projection(out.view(batch, length, -1))  # heads-first output: "mixed"


# --- layers/Transformer_EncDec.py -------------------------------------------------------------


class ConvLayer(nn.Module):
    """Informer's distilling: (B, L, C) -> (B, floor((L + 1) / 2) + 1, C)."""

    def __init__(self, c_in):
        super().__init__()
        self.downConv = nn.Conv1d(c_in, c_in, 3, padding=2, padding_mode="circular")
        self.norm = nn.BatchNorm1d(c_in)
        self.activation = nn.ELU()
        self.maxPool = nn.MaxPool1d(kernel_size=3, stride=2, padding=1)

    def forward(self, x):
        x = self.activation(self.norm(self.downConv(x.permute(0, 2, 1))))
        return self.maxPool(x).transpose(1, 2)


def _feed_forward_parts(layer, d_model, d_ff, dropout, activation, norms):
    """What EncoderLayer and DecoderLayer share, registered in TSLib's order after the attention:
    conv1, conv2 (1x1), norm1..norm{norms}, dropout."""
    d_ff = d_ff or 4 * d_model
    layer.conv1 = nn.Conv1d(d_model, d_ff, kernel_size=1)
    layer.conv2 = nn.Conv1d(d_ff, d_model, kernel_size=1)
    for index in range(1, norms + 1):
        setattr(layer, f"norm{index}", nn.LayerNorm(d_model))
    layer.dropout = nn.Dropout(dropout)
    layer.activation = F.relu if activation == "relu" else F.gelu


def _feed_forward(layer, x):
    y = layer.dropout(layer.activation(layer.conv1(x.transpose(-1, 1))))
    return layer.dropout(layer.conv2(y).transpose(-1, 1))


class EncoderLayer(nn.Module):
    def __init__(self, attention, d_model, d_ff=None, dropout=0.1, activation="relu"):
        super().__init__()
        self.attention = attention
        _feed_forward_parts(self, d_model, d_ff, dropout, activation, norms=2)

    def forward(self, x, attn_mask=None):
        x = self.norm1(x + self.dropout(self.attention(x, x, x, attn_mask)))
        return self.norm2(x + _feed_forward(self, x))


class Encoder(nn.Module):
    def __init__(self, attn_layers, conv_layers=None, norm_layer=None):
        super().__init__()
        self.attn_layers = nn.ModuleList(attn_layers)
        self.conv_layers = nn.ModuleList(conv_layers) if conv_layers is not None else None
        self.norm = norm_layer

    def forward(self, x, attn_mask=None):
        convs = list(self.conv_layers) if self.conv_layers is not None else []
        for index, layer in enumerate(self.attn_layers):
            x = layer(x, attn_mask)
            if index < len(convs):  # TSLib: zip(attn, conv) pairs, then the last attn layer
                x = convs[index](x)
        return x if self.norm is None else self.norm(x)


class DecoderLayer(nn.Module):
    def __init__(
        self, self_attention, cross_attention, d_model, d_ff=None, dropout=0.1, activation="relu"
    ):
        super().__init__()
        self.self_attention, self.cross_attention = self_attention, cross_attention
        _feed_forward_parts(self, d_model, d_ff, dropout, activation, norms=3)

    def forward(self, x, cross, x_mask=None, cross_mask=None):
        x = self.norm1(x + self.dropout(self.self_attention(x, x, x, x_mask)))
        x = self.norm2(x + self.dropout(self.cross_attention(x, cross, cross, cross_mask)))
        return self.norm3(x + _feed_forward(self, x))


class Decoder(nn.Module):
    def __init__(self, layers, norm_layer=None, projection=None):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.norm, self.projection = norm_layer, projection

    def forward(self, x, cross, x_mask=None, cross_mask=None):
        for layer in self.layers:
            x = layer(x, cross, x_mask, cross_mask)
        x = x if self.norm is None else self.norm(x)
        return x if self.projection is None else self.projection(x)


def _encoder_layers(c, attention):
    """`e_layers` EncoderLayers around `attention()` (a new inner attention per layer)."""
    return [
        EncoderLayer(
            AttentionLayer(attention(), c.d_model, c.n_heads), c.d_model, c.d_ff, c.dropout,
            c.activation,
        )
        for _ in range(c.e_layers)
    ]  # fmt: skip


def _decoder(c, attention):
    """TSLib's Decoder: `attention(mask_flag)` self (masked) and cross attention per layer."""
    layers = [
        DecoderLayer(
            AttentionLayer(attention(True), c.d_model, c.n_heads),
            AttentionLayer(attention(False), c.d_model, c.n_heads),
            c.d_model, c.d_ff, c.dropout, c.activation,
        )
        for _ in range(c.d_layers)
    ]  # fmt: skip
    return Decoder(layers, nn.LayerNorm(c.d_model), nn.Linear(c.d_model, c.c_out))


# --- models -----------------------------------------------------------------------------------


class ITransformer(nn.Module):
    def __init__(self, configs=None, **flags):
        super().__init__()
        c = _configs(configs, flags)
        self.pred_len = c.pred_len
        self.enc_embedding = DataEmbeddingInverted(c.seq_len, c.d_model, c.dropout)
        attention = lambda: FullAttention(False, c.factor, attention_dropout=c.dropout)  # noqa: E731
        self.encoder = Encoder(_encoder_layers(c, attention), norm_layer=nn.LayerNorm(c.d_model))
        self.projection = nn.Linear(c.d_model, c.pred_len)

    def forward(self, x_enc, x_mark_enc, x_dec=None, x_mark_dec=None):
        x_enc, means, stdev = normalised(x_enc)
        tokens = self.encoder(self.enc_embedding(x_enc, x_mark_enc))
        out = self.projection(tokens).permute(0, 2, 1)[:, :, : x_enc.shape[2]]
        return (out * stdev + means)[:, -self.pred_len :]


class Transpose(nn.Module):
    def __init__(self, *dims):
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return x.transpose(*self.dims)


class FlattenHead(nn.Module):
    def __init__(self, n_vars, nf, target_window, head_dropout=0):
        super().__init__()
        self.n_vars = n_vars
        self.flatten = nn.Flatten(start_dim=-2)
        self.linear = nn.Linear(nf, target_window)
        self.dropout = nn.Dropout(head_dropout)

    def forward(self, x):  # (B, N, d_model, patch_num) -> (B, N, target_window)
        return self.dropout(self.linear(self.flatten(x)))


class PatchTST(nn.Module):
    def __init__(self, configs=None, patch_len=16, stride=8, **flags):
        super().__init__()
        c = _configs(configs, flags)
        self.pred_len = c.pred_len
        self.patch_embedding = PatchEmbedding(c.d_model, patch_len, stride, stride, c.dropout)
        attention = lambda: FullAttention(False, c.factor, attention_dropout=c.dropout)  # noqa: E731
        norm = nn.Sequential(Transpose(1, 2), nn.BatchNorm1d(c.d_model), Transpose(1, 2))
        self.encoder = Encoder(_encoder_layers(c, attention), norm_layer=norm)
        self.head_nf = c.d_model * int((c.seq_len - patch_len) / stride + 2)
        self.head = FlattenHead(c.enc_in, self.head_nf, c.pred_len, head_dropout=c.dropout)

    def forward(self, x_enc, x_mark_enc=None, x_dec=None, x_mark_dec=None):
        x_enc, means, stdev = normalised(x_enc)
        patches, n_vars = self.patch_embedding(x_enc.permute(0, 2, 1))
        out = self.encoder(patches)
        out = out.reshape(-1, n_vars, out.shape[-2], out.shape[-1]).permute(0, 1, 3, 2)
        out = self.head(out).permute(0, 2, 1)
        return (out * stdev + means)[:, -self.pred_len :]


class Transformer(nn.Module):
    """TSLib's Transformer; `_attention(c, mask_flag)` builds each inner attention."""

    EMBEDDINGS_FIRST = False

    def __init__(self, configs=None, **flags):
        super().__init__()
        c = _configs(configs, flags)
        self.pred_len = c.pred_len
        embedding = lambda c_in: DataEmbedding(c_in, c.d_model, c.embed, c.freq, c.dropout)  # noqa: E731
        self.enc_embedding = embedding(c.enc_in)
        if self.EMBEDDINGS_FIRST:  # the creation order: initial weights as TSLib's for a seed
            self.dec_embedding = embedding(c.dec_in)
        self.encoder = self._encoder(c)
        if not self.EMBEDDINGS_FIRST:
            self.dec_embedding = embedding(c.dec_in)
        self.decoder = _decoder(c, lambda masked: self._attention(c, masked))

    def _attention(self, c, mask_flag):
        return FullAttention(mask_flag, c.factor, attention_dropout=c.dropout)

    def _encoder(self, c):
        layers = _encoder_layers(c, lambda: self._attention(c, False))
        return Encoder(layers, norm_layer=nn.LayerNorm(c.d_model))

    def forward(self, x_enc, x_mark_enc, x_dec, x_mark_dec):
        enc_out = self.encoder(self.enc_embedding(x_enc, x_mark_enc))
        dec_out = self.decoder(self.dec_embedding(x_dec, x_mark_dec), enc_out)
        return dec_out[:, -self.pred_len :]


class Informer(Transformer):
    """TSLib's Informer: Transformer's layout with ProbAttention everywhere and distilling."""

    EMBEDDINGS_FIRST = True

    def _attention(self, c, mask_flag):
        return ProbAttention(mask_flag, c.factor, attention_dropout=c.dropout)

    def _encoder(self, c):
        layers = _encoder_layers(c, lambda: self._attention(c, False))
        convs = [ConvLayer(c.d_model) for _ in range(c.e_layers - 1)] if c.distil else None
        return Encoder(layers, convs, norm_layer=nn.LayerNorm(c.d_model))


MODELS = {
    "iTransformer": ITransformer,
    "PatchTST": PatchTST,
    "Transformer": Transformer,
    "Informer": Informer,
}


def build(name, configs=None, **flags):
    """TSLib's `models.<name>.Model(configs)` for the forecast task, with run.py's defaults."""
    return MODELS[name](configs, **flags)
