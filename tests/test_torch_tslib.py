"""benchmarks/torch_tslib.py: TSLib's forecast models in PyTorch. Their state_dict keys against
keys written out from TSLib's module attributes, their output shapes, and ProbAttention against
a NumPy implementation of TSLib's steps and, when it keeps every query, against full attention."""

import math

import numpy as np
import pytest
import reference

torch = pytest.importorskip("torch")

from benchmarks import torch_tslib  # noqa: E402

SMALL = dict(
    seq_len=24, label_len=12, pred_len=8, enc_in=3, dec_in=3, c_out=3, d_model=16, n_heads=4,
    d_ff=20, e_layers=2, d_layers=1,
)  # fmt: skip
WB = ("weight", "bias")
ATTENTION = [f"{n}_projection.{p}" for n in ("query", "key", "value", "out") for p in WB]
BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _inputs(batch=2, marks=4, integer_marks=False, seed=0):
    generator = torch.Generator().manual_seed(seed)
    c = SMALL
    x_enc = torch.randn(batch, c["seq_len"], c["enc_in"], generator=generator)
    x_dec = torch.randn(batch, c["label_len"] + c["pred_len"], c["dec_in"], generator=generator)
    if integer_marks:  # month, day, weekday, hour
        sizes = torch.tensor([13, 32, 7, 24])
        draw = lambda n: (torch.rand(batch, n, 4, generator=generator) * sizes).floor()  # noqa: E731
        return x_enc, draw(x_enc.shape[1]), x_dec, draw(x_dec.shape[1])
    mark_enc = torch.rand(batch, c["seq_len"], marks, generator=generator) - 0.5
    mark_dec = torch.rand(batch, x_dec.shape[1], marks, generator=generator) - 0.5
    return x_enc, mark_enc, x_dec, mark_dec


def _encoder_keys(prefix, layers):
    keys = set()
    for i in range(layers):
        layer = f"{prefix}.attn_layers.{i}"
        keys |= {f"{layer}.attention.{k}" for k in ATTENTION}
        keys |= {f"{layer}.{m}.{p}" for m in ("conv1", "conv2", "norm1", "norm2") for p in WB}
    return keys


def _embedding_keys(prefix):
    return {
        f"{prefix}.value_embedding.tokenConv.weight",
        f"{prefix}.position_embedding.pe",
        f"{prefix}.temporal_embedding.embed.weight",
    }


def _encoder_decoder_keys(e_layers, d_layers):
    keys = _embedding_keys("enc_embedding") | _embedding_keys("dec_embedding")
    keys |= _encoder_keys("encoder", e_layers) | {"encoder.norm.weight", "encoder.norm.bias"}
    for j in range(d_layers):
        layer = f"decoder.layers.{j}"
        for attention in ("self_attention", "cross_attention"):
            keys |= {f"{layer}.{attention}.{k}" for k in ATTENTION}
        modules = ("conv1", "conv2", "norm1", "norm2", "norm3")
        keys |= {f"{layer}.{m}.{p}" for m in modules for p in WB}
    return keys | {f"decoder.{m}.{p}" for m in ("norm", "projection") for p in WB}


EXPECTED_KEYS = {
    "iTransformer": (
        {"enc_embedding.value_embedding.weight", "enc_embedding.value_embedding.bias"}
        | _encoder_keys("encoder", 2)
        | {"encoder.norm.weight", "encoder.norm.bias", "projection.weight", "projection.bias"}
    ),
    "PatchTST": (
        {"patch_embedding.value_embedding.weight", "patch_embedding.position_embedding.pe"}
        | _encoder_keys("encoder", 2)
        | {f"encoder.norm.1.{p}" for p in BN}
        | {"head.linear.weight", "head.linear.bias"}
    ),
    "Transformer": _encoder_decoder_keys(2, 1),
    "Informer": (
        _encoder_decoder_keys(2, 1)
        | {"encoder.conv_layers.0.downConv.weight", "encoder.conv_layers.0.downConv.bias"}
        | {f"encoder.conv_layers.0.norm.{p}" for p in BN}
    ),
}


@pytest.mark.parametrize("name", list(torch_tslib.MODELS))
def test_state_dict_keys_are_tslibs_and_the_forecast_has_pred_len_rows(name):
    torch.manual_seed(0)
    model = torch_tslib.build(name, **SMALL).eval()
    assert set(model.state_dict()) == EXPECTED_KEYS[name]
    with torch.no_grad():
        torch.manual_seed(1)  # Informer's key samples
        out = model(*_inputs())
    assert out.shape == (2, SMALL["pred_len"], 3)
    assert torch.isfinite(out).all()
    clone = torch_tslib.build(name, **SMALL).eval()
    clone.load_state_dict(model.state_dict())  # strict: the same keys and shapes
    with torch.no_grad():
        torch.manual_seed(1)
        torch.testing.assert_close(clone(*_inputs()), out, rtol=0, atol=0)


def test_state_dict_shapes_follow_the_flags():
    state = lambda name, **flags: torch_tslib.build(name, **{**SMALL, **flags}).state_dict()  # noqa: E731
    shapes = {k: tuple(v.shape) for k, v in state("iTransformer").items()}
    assert shapes["enc_embedding.value_embedding.weight"] == (16, 24)
    assert shapes["projection.weight"] == (8, 16)
    shapes = {k: tuple(v.shape) for k, v in state("PatchTST").items()}
    assert shapes["patch_embedding.value_embedding.weight"] == (16, 16)  # patch_len=16 always
    assert shapes["patch_embedding.position_embedding.pe"] == (1, 5000, 16)
    assert shapes["head.linear.weight"] == (8, 16 * int((24 - 16) / 8 + 2))  # 2 patches
    shapes = {k: tuple(v.shape) for k, v in state("Informer", c_out=5, enc_in=6).items()}
    assert shapes["enc_embedding.value_embedding.tokenConv.weight"] == (16, 6, 3)
    assert shapes["enc_embedding.temporal_embedding.embed.weight"] == (16, 4)  # freq 'h'
    assert shapes["encoder.conv_layers.0.downConv.weight"] == (16, 16, 3)
    assert shapes["decoder.projection.weight"] == (5, 16)
    assert shapes["encoder.attn_layers.0.conv1.weight"] == (20, 16, 1)
    assert "encoder.conv_layers.0.downConv.weight" not in state("Informer", distil=False)
    fixed = state("Transformer", embed="fixed", freq="t")
    table = fixed["enc_embedding.temporal_embedding.hour_embed.emb.weight"]
    assert tuple(fixed["dec_embedding.temporal_embedding.minute_embed.emb.weight"].shape) == (4, 16)
    rates = np.exp(np.arange(0, 16, 2) * -(math.log(10000.0) / 16))
    np.testing.assert_allclose(table[:, 0::2], np.sin(np.arange(24)[:, None] * rates), atol=1e-6)
    learned = state("Transformer", embed="learned")
    assert "enc_embedding.temporal_embedding.month_embed.weight" in learned
    assert not any("minute" in key for key in learned)


def test_integer_marks_and_run_py_defaults():
    model = torch_tslib.build("Transformer", embed="fixed", **SMALL).eval()
    with torch.no_grad():
        assert model(*_inputs(integer_marks=True)).shape == (2, 8, 3)
    defaults = torch_tslib.RUN_PY_DEFAULTS
    assert defaults["seq_len"] == 96 and defaults["label_len"] == 48 and defaults["d_ff"] == 2048
    assert defaults["distil"] is True and defaults["embed"] == "timeF" and defaults["factor"] == 1
    assert defaults["p_hidden_dims"] == [128, 128] and defaults["down_sampling_method"] is None
    with pytest.raises(ValueError, match="task_name"):
        torch_tslib.build("Informer", task_name="imputation")


def test_informer_distils_the_encoder_to_floor_of_half_plus_one():
    model = torch_tslib.build("Informer", **{**SMALL, "e_layers": 3}).eval()
    lengths = []
    for conv in model.encoder.conv_layers:
        conv.register_forward_hook(lambda module, args, out: lengths.append(out.shape[1]))
    with torch.no_grad():
        model(*_inputs())
    assert lengths == [13, 8]  # floor((L + 1) / 2) + 1, TSLib's padding=2 (Informer2020: 12, 6)


# --- ProbAttention ----------------------------------------------------------------------------


def _qkv(batch=2, length=10, source=10, heads=3, depth=4, seed=1):
    generator = torch.Generator().manual_seed(seed)
    shapes = [(batch, length, heads, depth)] + [(batch, source, heads, depth)] * 2
    return [torch.randn(shape, generator=generator) for shape in shapes]


@pytest.mark.parametrize("masked", [False, True])
def test_prob_attention_given_a_sample_is_tslibs_sparse_attention(masked):
    q, k, v = _qkv()
    sample = torch.randint(10, (10, 3), generator=torch.Generator().manual_seed(2))
    attention = torch_tslib.ProbAttention(masked, factor=1, sampler=lambda *_: sample).eval()
    out = attention(q, k, v)
    assert attention.last_sample is sample
    # factor 1: ceil(ln 10) = 3 keys sampled per query, the 3 most "active" queries attended.
    expected = reference.prob_attention(q.numpy(), k.numpy(), v.numpy(), sample.numpy(), 3, masked)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("masked", [False, True])
def test_prob_attention_keeping_every_query_is_full_attention(masked):
    q, k, v = _qkv(length=6, source=6)
    every_key = lambda L_Q, L_K, sample_k: torch.arange(L_K).repeat(L_Q, 1)  # noqa: E731
    attention = torch_tslib.ProbAttention(masked, factor=10, sampler=every_key).eval()
    out = attention(q, k, v)  # (B, H, L, D)
    scores = np.einsum("blhe,bshe->bhls", q.numpy(), k.numpy()) / 2.0  # sqrt(depth 4)
    if masked:
        scores = np.where(np.triu(np.ones((6, 6)), 1) > 0, -np.inf, scores)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    expected = np.einsum("bhls,bshd->bhld", weights, v.numpy())
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-5, atol=1e-6)
    full = torch_tslib.FullAttention(masked).eval()(q, k, v)  # (B, L, H, D): not heads-first
    torch.testing.assert_close(full.transpose(1, 2), out, rtol=1e-5, atol=1e-6)


def test_attention_layer_reads_prob_attentions_heads_first_output_as_mixed():
    torch.manual_seed(3)
    every_key = lambda L_Q, L_K, sample_k: torch.arange(L_K).repeat(L_Q, 1)  # noqa: E731
    prob = torch_tslib.AttentionLayer(torch_tslib.ProbAttention(False, 10), 8, 2).eval()
    torch_tslib.set_prob_attention_sampler(prob, every_key)
    full = torch_tslib.AttentionLayer(torch_tslib.FullAttention(False), 8, 2).eval()
    full.load_state_dict(prob.state_dict())
    x = torch.randn(2, 5, 8)
    heads = {}
    full.inner_attention.register_forward_hook(lambda m, a, out: heads.update(out=out))
    with torch.no_grad():
        mixed = prob(x, x, x)
        full(x, x, x)
        # (B, L, H, D) -> heads-first (B, H, L, D), then read as (B, L, H * D): TSLib's "mix".
        scrambled = heads["out"].transpose(1, 2).reshape(2, 5, 8)
    torch.testing.assert_close(mixed, full.out_projection(scrambled), rtol=1e-5, atol=1e-6)


def test_informer_forward_is_deterministic_given_the_samples():
    torch.manual_seed(4)
    model = torch_tslib.build("Informer", **{**SMALL, "factor": 1}).eval()
    inputs = _inputs()
    with torch.no_grad():
        torch.manual_seed(5)
        first = model(*inputs)
        drawn = [m.last_sample for m in model.modules() if isinstance(m, torch_tslib.ProbAttention)]
        torch.manual_seed(5)
        torch.testing.assert_close(model(*inputs), first, rtol=0, atol=0)  # TSLib's global draws
        replay = iter(drawn * 2)
        assert torch_tslib.set_prob_attention_sampler(model, lambda *_: next(replay)) == 4
        torch.testing.assert_close(model(*inputs), first, rtol=0, atol=0)
        torch.testing.assert_close(model(*inputs), first, rtol=0, atol=0)
        fixed = lambda L_Q, L_K, sample_k: torch.zeros(L_Q, sample_k, dtype=torch.long)  # noqa: E731
        torch_tslib.set_prob_attention_sampler(model, fixed)
        assert not torch.equal(model(*inputs), first)
    # encoder 24 queries and keys: ceil(ln 24) = 4 sampled; the decoder's cross attention sees
    # the distilled 13 encoder rows: ceil(ln 13) = 3.
    assert [tuple(s.shape) for s in drawn] == [(24, 4), (13, 3), (20, 3), (20, 3)]
