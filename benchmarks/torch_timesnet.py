"""TimesNet in PyTorch, as Time-Series-Library composes it, for the parity test and the timing.

Written from TSLib's `models/TimesNet.py`, `layers/Conv_Blocks.py` (Inception_Block_V1, six
separate convolutions) and `layers/Embed.py` (DataEmbedding with timeF features), long-term
forecast path only; `padding` picks TSLib 2023's last-row padding or 2025's zeros;
`one_convolution=True` runs each Inception block as one convolution with the mean of the
zero-padded kernels (the same weights and math, as our Keras model computes it). Its module
names are short ones of its own; `tslib_state_dict` gives its weights under TSLib's names, as
the `checkpoint.pth` TSLib saves (what `tf_tsembed.tslib.load_checkpoint` reads). Needs torch.
"""

import torch
from torch import nn

from benchmarks.torch_tslib import sinusoid_table


class Inception(nn.Module):
    def __init__(self, in_channels, out_channels, num_kernels, one_convolution=False):
        super().__init__()
        self.one_convolution = one_convolution
        self.kernels = nn.ModuleList(
            nn.Conv2d(in_channels, out_channels, kernel_size=2 * i + 1, padding=i)
            for i in range(num_kernels)
        )
        for conv in self.kernels:
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.constant_(conv.bias, 0)

    def forward(self, x):
        if not self.one_convolution:
            return torch.stack([conv(x) for conv in self.kernels], dim=-1).mean(-1)
        n = len(self.kernels)
        padded = [nn.functional.pad(c.weight, [n - 1 - i] * 4) for i, c in enumerate(self.kernels)]
        bias = torch.stack([c.bias for c in self.kernels]).mean(0)
        return nn.functional.conv2d(x, torch.stack(padded).mean(0), bias, padding=n - 1)


class TimesBlock(nn.Module):
    def __init__(self, length, d_model, d_ff, top_k, num_kernels, padding, one_convolution):
        super().__init__()
        self.length, self.top_k, self.padding = length, top_k, padding
        self.conv = nn.Sequential(
            Inception(d_model, d_ff, num_kernels, one_convolution),
            nn.GELU(),
            Inception(d_ff, d_model, num_kernels, one_convolution),
        )

    def forward(self, x):
        batch, length, channels = x.shape
        spectrum = torch.fft.rfft(x, dim=1).abs()
        frequencies = spectrum.mean(0).mean(-1)
        frequencies[0] = 0
        _, top = torch.topk(frequencies, self.top_k)
        top = top.detach().cpu().numpy()
        amplitudes = spectrum.mean(-1)[:, top]
        outputs = []
        for frequency in top:
            period = length // int(frequency)
            out = x
            if length % period:
                extra = (length // period + 1) * period - length
                tail = (
                    x[:, -extra:]
                    if self.padding == "last_rows"
                    else x.new_zeros(batch, extra, channels)
                )
                out = torch.cat([x, tail], dim=1)
            grid = out.reshape(batch, -1, period, channels).permute(0, 3, 1, 2)
            grid = self.conv(grid).permute(0, 2, 3, 1).reshape(batch, -1, channels)
            outputs.append(grid[:, :length])
        weights = torch.softmax(amplitudes, dim=1)[:, None, None, :]
        return (torch.stack(outputs, dim=-1) * weights).sum(-1) + x


class TimesNet(nn.Module):
    def __init__(
        self,
        seq_len,
        pred_len,
        c_in,
        num_time_features,
        *,
        d_model,
        d_ff,
        e_layers,
        dropout,
        top_k=5,
        num_kernels=6,
        padding="last_rows",
        one_convolution=False,
    ):
        super().__init__()
        self.seq_len, self.pred_len = seq_len, pred_len
        self.token = nn.Conv1d(c_in, d_model, 3, padding=1, padding_mode="circular", bias=False)
        nn.init.kaiming_normal_(self.token.weight, mode="fan_in", nonlinearity="leaky_relu")
        self.time_features = nn.Linear(num_time_features, d_model, bias=False)
        self.register_buffer("position", sinusoid_table(seq_len, d_model)[None])
        self.dropout = nn.Dropout(dropout)
        self.predict_linear = nn.Linear(seq_len, seq_len + pred_len)
        self.blocks = nn.ModuleList(
            TimesBlock(
                seq_len + pred_len, d_model, d_ff, top_k, num_kernels, padding, one_convolution
            )
            for _ in range(e_layers)
        )
        self.layer_norm = nn.LayerNorm(d_model)
        self.projection = nn.Linear(d_model, c_in)

    def forward(self, x, marks):
        means = x.mean(1, keepdim=True).detach()
        x = x - means
        stdev = torch.sqrt(torch.var(x, dim=1, keepdim=True, unbiased=False) + 1e-5)
        x = x / stdev
        tokens = self.token(x.permute(0, 2, 1)).transpose(1, 2)
        out = self.dropout(tokens + self.time_features(marks) + self.position)
        out = self.predict_linear(out.permute(0, 2, 1)).permute(0, 2, 1)
        for block in self.blocks:
            out = self.layer_norm(block(out))
        out = self.projection(out) * stdev + means
        return out[:, -self.pred_len :]


# This module's names -> TSLib's (models/TimesNet.py, layers/Embed.py).
_TSLIB_NAMES = {
    "token.weight": "enc_embedding.value_embedding.tokenConv.weight",
    "time_features.weight": "enc_embedding.temporal_embedding.embed.weight",
}


def tslib_state_dict(model):
    """`model`'s state_dict under TSLib's keys, as TSLib's `checkpoint.pth` holds it: its
    DataEmbedding's names, `model.{i}` for the blocks and the 5000-row `pe` buffer."""
    state = {}
    for key, tensor in model.state_dict().items():
        if key == "position":
            continue
        if key.startswith("blocks."):
            key = "model." + key[len("blocks.") :]
        state[_TSLIB_NAMES.get(key, key)] = tensor
    d_model = model.token.weight.shape[0]
    state["enc_embedding.position_embedding.pe"] = sinusoid_table(5000, d_model)[None]
    return state
