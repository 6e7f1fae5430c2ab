#!/usr/bin/env python3
"""The PyTorch training-speed baseline of SPEC §8, timed on the card in hand.

Model (SPEC §2, the `bench-gpu` preset; parameter names as reference/swax_ref.py):
V 50304 (50257 used: padded logits are -inf), D 1024, 12 blocks alternating
SWA (16 heads x 64, RoPE rotate-half, theta 10000, window w) and mLSTM (4 heads,
DQK 128, DV 256, gate soft cap 15, b_i = -10, b_f = linspace(3, 6), per-head
LayerNorm, sigmoid output gate), SwiGLU 2752, RMSNorm, untied LM head, logit
soft cap 30; 254.9M parameters.

Training step (SPEC §4/§8): bf16 autocast over fp32 master weights; forward,
cross-entropy, backward, grad-norm clip 1.0, torch.optim.AdamW(fused=True);
batch 8 x 4096 random tokens; window 128 and 2048.

Implementation, as SPEC §8 describes the baseline:
  * torch.compile per block piece: the SWA block (attention + FFN) is one
    compiled function, an mLSTM block is two (projections + gates, then
    per-head norm + output gate + FFN) around the cell, and the head (final
    norm, LM head, soft cap, cross-entropy) is one more. Every block of a kind
    reuses the same compiled graph (weights are arguments).
  * attention: torch.nn.attention.flex_attention.flex_attention with a
    sliding-window causal BlockMask from create_block_mask (q >= k and q - k < w).
  * mLSTM cell: NX-AI's Triton TFLA kernel
    mlstm_kernels.torch.chunkwise.triton_xl_chunk.mlstm_chunkwise__xl_chunk,
    chunk 128, q/k/v bf16 and the gates fp32 (see call_tfla for how the gates
    are passed). If the import or the first call fails, a plain-PyTorch
    chunkwise mLSTM (torch.compile'd, then eager) is used instead, and every
    output line says so.

mlstm_kernels is not vendored: a snapshot of the public repository's package
sits in .baseline/ (ignored by git) or on PYTHONPATH. Its import needs einops;
where einops is missing a minimal stand-in for einops.rearrange is installed.

Output: JSON lines. First {"torch", "device", ...}; then one "tfla_check" line
(TFLA against the plain-PyTorch chunkwise cell, forward and gradients, on the
model's shapes); then one line per window:
  {"bench": "train_baseline", "impl": ..., "window": W, "tokens_per_s": ...,
   "step_ms": ..., "mfu": ..., "peak_gb": ..., "gflop_per_token": ..., ...}
step_ms is the median of the timed steps (CUDA events); peak_gb is
torch.cuda.max_memory_allocated / 1e9; mfu is against 989 TFLOP/s (H200 dense
bf16) with FLOPs/token = 6 x (parameters - input embedding) + SWA + mLSTM cell
FLOPs (see flops_per_token).

  python3 scripts/gpu_baseline_model.py [--steps 10] [--warmup 3] [--windows 128,2048] [--profile N]
"""
import argparse
import json
import math
import os
import statistics
import sys
import time
import types

import torch
import torch.nn as nn
import torch.nn.functional as F

try:                      # PyTorch >= 2.5; absent from Debian's 1.13 (this file is for the GPU machine)
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
except ImportError:       # reported in main()
    create_block_mask = flex_attention = None

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", ".baseline"))

PEAK_FLOPS = 989e12          # H200 (and H100 SXM) dense bf16 tensor-core peak

CFG = dict(vocab_size=50304, vocab_used=50257, d_model=1024, n_blocks=12, pattern="AM",
           attn_heads=16, head_dim=64, rope_theta=10000.0, mlstm_heads=4, ffn_dim=2752,
           gate_softcap=15.0, logit_softcap=30.0, norm_eps=1e-6, igate_bias_init=-10.0)


def emit(obj):
    print(json.dumps(obj), flush=True)


def note(msg):
    print("gpu_baseline_model: " + msg, file=sys.stderr, flush=True)

# ----------------------------------------------------------------------------- TFLA import


def _rearrange(x, pattern, **sizes):
    """The subset of einops.rearrange that mlstm_kernels uses: named axes, one
    level of parentheses, the literal 1 (e.g. "b nh (nc l) -> b nh nc l")."""
    def parse(side):
        groups, cur = [], None
        for tok in side.replace("(", " ( ").replace(")", " ) ").split():
            if tok == "(":
                cur = []
            elif tok == ")":
                groups.append(cur)
                cur = None
            elif cur is not None:
                cur.append(tok)
            else:
                groups.append([tok])
        return groups

    lhs, rhs = pattern.split("->")
    left, right = parse(lhs), parse(rhs)
    if len(left) != x.dim():
        raise ValueError("rearrange: %r does not match a %d-d tensor" % (pattern, x.dim()))
    known = dict(sizes)
    for grp, n in zip(left, x.shape):
        names = [a for a in grp if a != "1"]
        unknown = [a for a in names if a not in known]
        prod = 1
        for a in names:
            if a in known:
                prod *= known[a]
        if len(unknown) == 1:
            known[unknown[0]] = n // prod
        elif len(unknown) > 1:
            raise ValueError("rearrange: cannot infer %s in %r" % (unknown, pattern))
    el = [a for grp in left for a in grp if a != "1"]
    er = [a for grp in right for a in grp if a != "1"]
    y = x.reshape([known[a] for a in el]).permute([el.index(a) for a in er])
    out = []
    for grp in right:
        s = 1
        for a in grp:
            if a != "1":
                s *= known[a]
        out.append(s)
    return y.reshape(out)


def import_tfla():
    """-> (fn or None, einops_source, error or None)."""
    einops_src = "installed"
    try:
        import einops  # noqa: F401
    except Exception:  # noqa: BLE001
        mod = types.ModuleType("einops")
        mod.rearrange = _rearrange
        sys.modules["einops"] = mod
        einops_src = "stand-in (einops not installed)"
    try:
        from mlstm_kernels.torch.chunkwise.triton_xl_chunk import mlstm_chunkwise__xl_chunk
        return mlstm_chunkwise__xl_chunk, einops_src, None
    except Exception as e:  # noqa: BLE001
        return None, einops_src, "%s: %s" % (type(e).__name__, e)

# ----------------------------------------------------------------------------- model pieces


def softcap(x, c):
    return c * torch.tanh(x / c)


def rms_norm(x, w, eps):
    x = x.float()
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, cos, sin):
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


def ffn_residual(x, n2, w_gate, w_up, w_down, eps):
    y = rms_norm(x, n2, eps)
    return x + F.linear(F.silu(F.linear(y, w_gate)) * F.linear(y, w_up), w_down)


def swa_block(x, n1, wq, wk, wv, wo, n2, w_gate, w_up, w_down, cos, sin, block_mask,
              H, dh, eps):
    """x += SWA(RMSNorm(x)); x += FFN(RMSNorm(x)). Linears under the caller's bf16
    autocast; RoPE in fp32; flex_attention on explicit bf16 q, k, v outside autocast
    (flex_attention is not autocast-aware)."""
    B, T, _ = x.shape
    y = rms_norm(x, n1, eps)

    def heads(t):
        return t.view(B, T, H, dh).transpose(1, 2)
    q = rope(heads(F.linear(y, wq)).float(), cos, sin).to(torch.bfloat16)
    k = rope(heads(F.linear(y, wk)).float(), cos, sin).to(torch.bfloat16)
    v = heads(F.linear(y, wv)).to(torch.bfloat16)
    with torch.autocast("cuda", enabled=False):
        o = flex_attention(q, k, v, block_mask=block_mask, scale=dh ** -0.5)
    x = x + F.linear(o.transpose(1, 2).reshape(B, T, H * dh), wo)
    return ffn_residual(x, n2, w_gate, w_up, w_down, eps)


def mlstm_in(x, n1, wq, wk, wv, wog, w_if, b_if, NH, cap, eps):
    """Projections of an mLSTM block: q, k (B, NH, T, DQK) and v (B, NH, T, DV)
    in bf16, contiguous; the soft-capped gate pre-activations i~, f~ (B, NH, T)
    in fp32 (computed with autocast off: SPEC §9 keeps every gate in fp32);
    the output-gate pre-activation o (B, T, D)."""
    B, T, D = x.shape
    y = rms_norm(x, n1, eps)

    def heads(t):
        return t.view(B, T, NH, -1).transpose(1, 2).contiguous().to(torch.bfloat16)
    q, k, v = heads(F.linear(y, wq)), heads(F.linear(y, wk)), heads(F.linear(y, wv))
    og = F.linear(y, wog)
    with torch.autocast("cuda", enabled=False):
        g = softcap(F.linear(y, w_if, b_if), cap)                 # (B, T, 2 NH) fp32
    ig = g[..., :NH].transpose(1, 2).contiguous()
    fg = g[..., NH:].transpose(1, 2).contiguous()
    return q, k, v, ig, fg, og


def mlstm_out(x, h, og, wnorm, wo, n2, w_gate, w_up, w_down, eps):
    """Per-head LayerNorm (mean-centred, no bias, fp32 statistics) x w_norm,
    sigmoid output gate, W_mo, residual; then the FFN half of the block."""
    B, NH, T, DV = h.shape
    h = h.float()
    hc = h - h.mean(-1, keepdim=True)
    h = hc * torch.rsqrt(hc.pow(2).mean(-1, keepdim=True) + eps)
    h = h.transpose(1, 2).reshape(B, T, NH * DV) * wnorm
    x = x + F.linear(torch.sigmoid(og.float()) * h, wo)
    return ffn_residual(x, n2, w_gate, w_up, w_down, eps)


def head_loss(x, nw, w_lm, targets, vocab_used, cap, eps):
    y = rms_norm(x, nw, eps)
    logits = softcap(F.linear(y, w_lm).float(), cap)
    V = logits.shape[-1]
    if vocab_used < V:
        pad = torch.arange(V, device=logits.device) >= vocab_used
        logits = logits.masked_fill(pad, float("-inf"))
    return F.cross_entropy(logits.view(-1, V), targets.reshape(-1))

# ----------------------------------------------------------------------------- mLSTM cells


def mlstm_chunkwise_torch(q, k, v, ig, fg, eps=1e-6, chunk=128):
    """Plain-PyTorch chunkwise mLSTM (SPEC §2), no document resets, fp32.
    q, k (B, NH, T, DQK); v (B, NH, T, DV); ig, fg (B, NH, T) soft-capped gate
    pre-activations (f~ raw: logsigmoid is applied here). Returns h (B, NH, T, DV)
    before the per-head norm. Autograd goes through everything, m and the
    normaliser included. T is padded at the end to a multiple of the chunk."""
    B, NH, T, DK = q.shape
    DV = v.shape[-1]
    L = int(chunk)
    nc = (T + L - 1) // L
    pad = nc * L - T
    q, k, v, ig, fg = q.float(), k.float(), v.float(), ig.float(), fg.float()
    lf = F.logsigmoid(fg)
    qs = q * DK ** -0.5
    if pad:
        qs, k, v = [F.pad(t, (0, 0, 0, pad)) for t in (qs, k, v)]
        lf, ig = F.pad(lf, (0, pad)), F.pad(ig, (0, pad))
    qs = qs.reshape(B, NH, nc, L, DK)
    k = k.reshape(B, NH, nc, L, DK)
    v = v.reshape(B, NH, nc, L, DV)
    lf, ig = lf.reshape(B, NH, nc, L), ig.reshape(B, NH, nc, L)
    b = torch.cumsum(lf, dim=-1)                                  # in-chunk sums of lf
    ar = torch.arange(L, device=q.device)
    causal = ar[:, None] >= ar[None, :]
    logD = (b[..., :, None] - b[..., None, :] + ig[..., None, :]).masked_fill(~causal, float("-inf"))
    rowmax = logD.amax(dim=-1)                                    # (B, NH, nc, L)
    # stabiliser entering each chunk: m' = max(g + m_prev, max_s a_s), m_0 = 0
    mp = [q.new_zeros(B, NH)]
    for c in range(nc - 1):
        mp.append(torch.maximum(b[:, :, c, -1] + mp[-1], rowmax[:, :, c, -1]))
    m_prev = torch.stack(mp, dim=2)                               # (B, NH, nc)
    carry = b + m_prev[..., None]
    m = torch.maximum(carry, rowmax)
    w = torch.exp(carry - m)                                      # weight of the carried state
    Dm = torch.exp(logD - m[..., None])
    ka = k * Dm[..., -1, :, None]                                 # e^{a_s - m'} k_s
    KV = ka.transpose(-1, -2) @ v                                 # (B, NH, nc, DK, DV)
    Kn = ka.sum(dim=-2)
    wl = w[..., -1]
    Cs, ns = [q.new_zeros(B, NH, DK, DV)], [q.new_zeros(B, NH, DK)]
    for c in range(nc - 1):
        Cs.append(wl[:, :, c, None, None] * Cs[-1] + KV[:, :, c])
        ns.append(wl[:, :, c, None] * ns[-1] + Kn[:, :, c])
    C_prev, n_prev = torch.stack(Cs, dim=2), torch.stack(ns, dim=2)
    S = (qs @ k.transpose(-1, -2)) * Dm
    num = w[..., None] * (qs @ C_prev) + S @ v
    den = w * (qs @ n_prev[..., None])[..., 0] + S.sum(dim=-1)
    h = num / (torch.maximum(den.abs(), torch.exp(-m)) + eps)[..., None]
    return h.reshape(B, NH, nc * L, DV)[:, :, :T]


def call_tfla(tfla, q, k, v, ig, fg, eps, chunk):
    """The gates go to TFLA as they are, with no transformation:
      i = i~ = softcap15(W_i x + b_i): TFLA's i is the log-space input gate
          (it forms exp(i - m) inside, as SPEC's i' = exp(i~ - m));
      f = f~ = softcap15(W_f x + b_f), the raw pre-activation: TFLA applies
          log(sigmoid(f)) itself (fw_kernel_recurrent, chunkwise_gates), as SPEC's
          lf = logsigmoid(f~);
      q unscaled: TFLA multiplies q.k (and q.n, q.C) by DQK**-0.5 itself.
    q, k, v are bf16 (TFLA runs its matrix products in q's dtype); the gates stay
    fp32: the call runs with autocast off, so the autograd Function's
    custom_fwd(cast_inputs=...) casts nothing, and TFLA loads the gates as fp32
    and keeps its states and stabilisers in fp32. eps as SPEC: max(|n.q|, e^-m) + eps.
    m_0 = 0 (no initial state), as SPEC."""
    with torch.autocast("cuda", enabled=False):
        return tfla(q, k, v, ig, fg, eps=eps, chunk_size=chunk,
                    autocast_kernel_dtype=torch.bfloat16)

# ----------------------------------------------------------------------------- modules


class Weight(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))


class SWA(nn.Module):
    def __init__(self, c):
        super().__init__()
        D, HD = c["d_model"], c["attn_heads"] * c["head_dim"]
        self.wq, self.wk, self.wv = (nn.Linear(D, HD, bias=False) for _ in range(3))
        self.wo = nn.Linear(HD, D, bias=False)


class MLSTM(nn.Module):
    def __init__(self, c):
        super().__init__()
        D, NH = c["d_model"], c["mlstm_heads"]
        self.wq, self.wk = nn.Linear(D, D // 2, bias=False), nn.Linear(D, D // 2, bias=False)
        self.wv, self.wog = nn.Linear(D, D, bias=False), nn.Linear(D, D, bias=False)
        self.wi, self.wf = nn.Linear(D, NH), nn.Linear(D, NH)
        self.norm = Weight(D)
        self.wo = nn.Linear(D, D, bias=False)


class FFN(nn.Module):
    def __init__(self, c):
        super().__init__()
        D, Fd = c["d_model"], c["ffn_dim"]
        self.w_gate, self.w_up = nn.Linear(D, Fd, bias=False), nn.Linear(D, Fd, bias=False)
        self.w_down = nn.Linear(Fd, D, bias=False)


class Block(nn.Module):
    def __init__(self, c, kind):
        super().__init__()
        self.kind = kind
        self.norm1 = Weight(c["d_model"])
        if kind == "A":
            self.attn = SWA(c)
        else:
            self.mlstm = MLSTM(c)
        self.norm2 = Weight(c["d_model"])
        self.ffn = FFN(c)


class Swax(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed = nn.Embedding(c["vocab_size"], c["d_model"])
        pat = c["pattern"]
        self.blocks = nn.ModuleList(Block(c, pat[i % len(pat)]) for i in range(c["n_blocks"]))
        self.norm = Weight(c["d_model"])
        self.lm_head = nn.Linear(c["d_model"], c["vocab_size"], bias=False)

    @torch.no_grad()
    def init_weights(self):
        """SPEC §2 initialisation (xLSTM-7B recipe)."""
        c = self.c
        D, NH = c["d_model"], c["mlstm_heads"]
        small, out = math.sqrt(2.0 / (5 * D)), 2.0 / (c["n_blocks"] * math.sqrt(D))
        for name, p in self.named_parameters():
            parts = name.split(".")
            leaf = parts[-2] if len(parts) >= 2 else name
            if leaf in ("norm", "norm1", "norm2"):
                p.fill_(1.0)
            elif name.endswith("wi.bias"):
                p.fill_(c["igate_bias_init"])
            elif name.endswith("wf.bias"):
                p.copy_(torch.linspace(3.0, 6.0, NH))
            elif leaf in ("wi", "wf", "wog"):
                p.zero_()
            elif leaf in ("wo", "w_down"):
                p.normal_(0.0, out)
            else:                               # embed, wq/wk/wv, w_gate, w_up, lm_head
                p.normal_(0.0, small)
        return self


class Runner:
    """Holds the compiled pieces and the mLSTM cell in use; runs the forward+loss."""

    def __init__(self, model, compile_on, tfla, chunk):
        self.m, self.c, self.chunk = model, model.c, chunk
        wrap = (lambda f: torch.compile(f, dynamic=False)) if compile_on else (lambda f: f)
        self.swa = wrap(swa_block)
        self.min = wrap(mlstm_in)
        self.mout = wrap(mlstm_out)
        self.head = wrap(head_loss)
        self.cell_torch_compiled = wrap(mlstm_chunkwise_torch)
        self.tfla = tfla
        self.impls = (["tfla"] if tfla is not None else []) + (
            ["torch-compiled", "torch-eager"] if compile_on else ["torch-eager"])
        self.impl = self.impls[0]

    def cell(self, q, k, v, ig, fg):
        eps = self.c["norm_eps"]
        if self.impl == "tfla":
            return call_tfla(self.tfla, q, k, v, ig, fg, eps, self.chunk)
        fn = self.cell_torch_compiled if self.impl == "torch-compiled" else mlstm_chunkwise_torch
        with torch.autocast("cuda", enabled=False):
            return fn(q, k, v, ig, fg, eps, self.chunk)

    def loss(self, tokens, targets, cos, sin, block_mask):
        c, m = self.c, self.m
        eps = c["norm_eps"]
        x = F.embedding(tokens, m.embed.weight)
        for blk in m.blocks:
            f = blk.ffn
            ffn_w = (blk.norm2.weight, f.w_gate.weight, f.w_up.weight, f.w_down.weight)
            if blk.kind == "A":
                a = blk.attn
                x = self.swa(x, blk.norm1.weight, a.wq.weight, a.wk.weight, a.wv.weight,
                             a.wo.weight, *ffn_w, cos, sin, block_mask,
                             c["attn_heads"], c["head_dim"], eps)
            else:
                ml = blk.mlstm
                w_if = torch.cat((ml.wi.weight, ml.wf.weight), 0)
                b_if = torch.cat((ml.wi.bias, ml.wf.bias), 0)
                q, k, v, ig, fg, og = self.min(x, blk.norm1.weight, ml.wq.weight, ml.wk.weight,
                                               ml.wv.weight, ml.wog.weight, w_if, b_if,
                                               c["mlstm_heads"], c["gate_softcap"], eps)
                h = self.cell(q, k, v, ig, fg)
                x = self.mout(x, h, og, ml.norm.weight, ml.wo.weight, *ffn_w, eps)
        return self.head(x, m.norm.weight, m.lm_head.weight, targets, c["vocab_used"],
                         c["logit_softcap"], eps)

# ----------------------------------------------------------------------------- FLOPs


def flops_per_token(c, n_params, window, T, chunk):
    """6 x (parameters - input embedding)   [matmuls with weights, fwd + bwd; the
                                             LM head counts, the embedding gather not]
     + SWA: per layer 12 x (H*dh) x w_eff   [q.k and p.v: 2 x 2 FLOPs per (query, key,
                                             channel) forward, x3 for fwd + bwd]; w_eff =
                                             mean over positions t < T of min(t + 1, w),
                                             the keys a causal window really sees
     + mLSTM cell: per layer 3 x NH x [(L + 1)(DQK + DV) + 4 DQK DV]
                                            [forward per token and head: causal in-chunk
                                             q.k and S.v over (L + 1)/2 keys on average,
                                             2 x (L+1)/2 x (DQK + DV); the state update
                                             k v^T and the inter-chunk q.C, 2 DQK DV each;
                                             x3 for fwd + bwd; elementwise gate work not
                                             counted].
    SPEC §8 quotes 1.24 GFLOP/token at w=128 and 1.34 at w=2048 for this model."""
    D, V = c["d_model"], c["vocab_size"]
    pat = c["pattern"]
    kinds = [pat[i % len(pat)] for i in range(c["n_blocks"])]
    nA, nM = kinds.count("A"), kinds.count("M")
    dense = 6.0 * (n_params - V * D)
    w = min(window, T)
    w_eff = (w * (w + 1) / 2 + (T - w) * w) / T
    swa = nA * 12.0 * c["attn_heads"] * c["head_dim"] * w_eff
    NH = c["mlstm_heads"]
    DK, DV = D // (2 * NH), D // NH
    L = min(chunk, T)
    mlstm = nM * 3.0 * NH * ((L + 1) * (DK + DV) + 4.0 * DK * DV)
    return dense + swa + mlstm, dict(dense=dense, swa=swa, mlstm=mlstm)

# ----------------------------------------------------------------------------- checks


def rel_err(a, b):
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def tfla_check(tfla, B, NH, T, DK, DV, chunk, eps):
    """TFLA against mlstm_chunkwise_torch on the same bf16-rounded inputs and the
    model's shapes (so TFLA's own compiled helpers see the shapes of the run).
    Forward h; and the gradients of sum(r * LayerNorm_per_head(h)), which the
    normaliser/stabiliser TFLA does not differentiate leaves unchanged up to eps."""
    g = torch.Generator(device="cuda").manual_seed(1234)

    def rnd(*s):
        return torch.randn(*s, device="cuda", generator=g)
    q, k = rnd(B, NH, T, DK).bfloat16(), rnd(B, NH, T, DK).bfloat16()
    v = rnd(B, NH, T, DV).bfloat16()
    ig = softcap(2.0 * rnd(B, NH, T) - 1.0, 15.0)
    fg = softcap(1.5 * rnd(B, NH, T) + 4.0, 15.0)
    r = rnd(B, NH, T, DV)

    def ln(h):
        hc = h.float() - h.float().mean(-1, keepdim=True)
        return hc * torch.rsqrt(hc.pow(2).mean(-1, keepdim=True) + eps)

    xs1 = [t.clone().requires_grad_(True) for t in (q, k, v, ig, fg)]
    h1 = call_tfla(tfla, *xs1, eps, chunk)
    g1 = torch.autograd.grad((ln(h1) * r).sum(), xs1)
    xs2 = [t.detach().float().requires_grad_(True) for t in (q, k, v, ig, fg)]
    h2 = mlstm_chunkwise_torch(*xs2, eps=eps, chunk=chunk)
    g2 = torch.autograd.grad((ln(h2) * r).sum(), xs2)
    out = {"h": rel_err(h1.float(), h2)}
    for name, a, b in zip(("dq", "dk", "dv", "di", "df"), g1, g2):
        out[name] = rel_err(a.float(), b)
    finite = bool(torch.isfinite(h1).all()) and all(bool(torch.isfinite(t).all()) for t in g1)
    return out, finite

# ----------------------------------------------------------------------------- main


def set_recompile_limit(n):
    import torch._dynamo
    cfg = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit"):
        try:
            if getattr(cfg, name) < n:
                setattr(cfg, name, n)
            return
        except AttributeError:
            continue


def main():
    ap = argparse.ArgumentParser(description="SPEC §8 PyTorch training-speed baseline (one GPU).")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per window")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps per window (compilation)")
    ap.add_argument("--windows", default="128,2048")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=4096)
    ap.add_argument("--chunk", type=int, default=128, help="mLSTM chunk size")
    ap.add_argument("--mlstm", choices=["auto", "tfla", "torch"], default="auto",
                    help="auto: TFLA, falling back to plain PyTorch if it fails")
    ap.add_argument("--no-compile", action="store_true", help="eager everything (debugging)")
    ap.add_argument("--no-check", action="store_true", help="skip the TFLA vs PyTorch cell check")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="after the timed steps of each window, one more step under torch.profiler: its N "
                         "costliest CUDA kernels (grouped by name) as JSON lines, to set beside swax's "
                         "SWAX_PROFILE=1 table (where does PyTorch win?)")
    args = ap.parse_args()
    windows = [int(w) for w in args.windows.split(",") if w.strip()]

    if not torch.cuda.is_available() or flex_attention is None:
        emit({"bench": "train_baseline", "torch": torch.__version__,
              "error": "needs CUDA and torch.nn.attention.flex_attention"})
        return 2
    dev = torch.device("cuda")
    torch.manual_seed(args.seed)
    try:
        import triton
        triton_version = triton.__version__
    except Exception:  # noqa: BLE001
        triton_version = None

    tfla, einops_src, tfla_err = (None, None, "not requested")
    if args.mlstm != "torch":
        tfla, einops_src, tfla_err = import_tfla()
        if tfla is None:
            if args.mlstm == "tfla":
                emit({"bench": "train_baseline", "error": "TFLA import failed: " + tfla_err})
                return 1
            note("TFLA import failed (%s); plain-PyTorch chunkwise mLSTM instead" % tfla_err)
    emit({"torch": torch.__version__, "device": torch.cuda.get_device_name(), "cuda": torch.version.cuda,
          "triton": triton_version, "tfla": tfla is not None, "tfla_error": tfla_err,
          "einops": einops_src})

    c = dict(CFG)
    B, T, chunk = args.batch, args.seq, args.chunk
    NH = c["mlstm_heads"]
    DK, DV = c["d_model"] // (2 * NH), c["d_model"] // NH

    if tfla is not None and not args.no_check:
        try:
            errs, finite = tfla_check(tfla, B, NH, T, DK, DV, chunk, c["norm_eps"])
            verdict = "ok" if finite and errs["h"] < 5e-2 else "MISMATCH"
            emit({"bench": "tfla_check", "B": B, "NH": NH, "T": T, "dqk": DK, "dv": DV, "chunk": chunk,
                  "rel_err": {k_: round(v_, 5) for k_, v_ in errs.items()}, "finite": finite,
                  "verdict": verdict})
        except Exception as e:  # noqa: BLE001
            tfla_err = "%s: %s" % (type(e).__name__, e)
            note("TFLA call failed in the check (%s); plain-PyTorch chunkwise mLSTM instead" % tfla_err)
            emit({"bench": "tfla_check", "error": tfla_err})
            if args.mlstm == "tfla":
                return 1
            tfla = None
        torch.cuda.empty_cache()

    set_recompile_limit(64)
    model = Swax(c).to(dev).init_weights()
    n_params = sum(p.numel() for p in model.parameters())
    params = list(model.parameters())
    opt = torch.optim.AdamW(
        [dict(params=[p for p in params if p.dim() >= 2], weight_decay=0.1),
         dict(params=[p for p in params if p.dim() < 2], weight_decay=0.0)],
        lr=3e-4, betas=(0.9, 0.95), eps=1e-8, fused=True)
    runner = Runner(model, not args.no_compile, tfla, chunk)
    if args.mlstm == "tfla":
        runner.impls = ["tfla"]           # no fallback when TFLA is asked for by name

    data = torch.randint(0, c["vocab_used"], (B, T + 1), device=dev)
    tokens, targets = data[:, :-1].contiguous(), data[:, 1:].contiguous()
    # RoPE tables: angles in float64 (SPEC §2), used in fp32
    dh = c["head_dim"]
    j = torch.arange(dh // 2, dtype=torch.float64, device=dev)
    ang = torch.arange(T, dtype=torch.float64, device=dev)[:, None] * \
        torch.pow(torch.tensor(c["rope_theta"], dtype=torch.float64, device=dev), -2.0 * j / dh)[None, :]
    cos, sin = torch.cos(ang).float(), torch.sin(ang).float()

    # One mask_mod for every window: the window is a 0-d device tensor it reads, so
    # the compiled SWA block is not recompiled when the window changes; the block
    # sparsity (which tiles are skipped) comes from create_block_mask per window.
    win = torch.zeros((), dtype=torch.int32, device=dev)

    def sliding_causal(b, h, q_idx, kv_idx):
        return (q_idx >= kv_idx) & (q_idx - kv_idx < win)

    def step(block_mask):
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = runner.loss(tokens, targets, cos, sin, block_mask)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss

    rc = 0
    fallback_why = []                     # why the cell in use is not TFLA, across windows
    if runner.impl != "tfla":
        fallback_why.append(str(tfla_err))
    for w in windows:
        win.fill_(w)
        block_mask = create_block_mask(sliding_causal, B=None, H=None, Q_LEN=T, KV_LEN=T, device="cuda")
        fpt, parts = flops_per_token(c, n_params, w, T, chunk)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        notes = []
        t_warm = time.perf_counter()
        while True:
            try:
                for _ in range(args.warmup):
                    step(block_mask)
                torch.cuda.synchronize()
                break
            except Exception as e:  # noqa: BLE001
                msg = "%s failed: %s: %s" % (runner.impl, type(e).__name__, str(e).splitlines()[0][:300]
                                             if str(e) else "")
                note(msg)
                notes.append(msg)
                if runner.impl == "tfla":
                    fallback_why.append(msg)
                i = runner.impls.index(runner.impl)
                if i + 1 >= len(runner.impls):
                    runner.impl = None
                    break
                runner.impl = runner.impls[i + 1]
                opt.zero_grad(set_to_none=True)
                torch.cuda.empty_cache()
        if runner.impl is None:
            emit({"bench": "train_baseline", "window": w, "error": "; ".join(notes)})
            return 1
        warm_s = time.perf_counter() - t_warm

        evs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
               for _ in range(args.steps)]
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for a, b in evs:
            a.record()
            loss = step(block_mask)
            b.record()
        torch.cuda.synchronize()
        wall = time.perf_counter() - t0
        ms = [a.elapsed_time(b) for a, b in evs]
        step_ms = statistics.median(ms)
        tps = B * T / (step_ms / 1e3)
        cell = {"tfla": "tfla", "torch-compiled": "torch-chunkwise(compiled)",
                "torch-eager": "torch-chunkwise(eager)"}[runner.impl]
        impl = ("torch.compile" if not args.no_compile else "eager") + "+flex_attention+" + cell
        line = {"bench": "train_baseline", "impl": impl, "window": w,
                "tokens_per_s": round(tps, 1), "step_ms": round(step_ms, 3),
                "mfu": round(tps * fpt / PEAK_FLOPS, 4),
                "peak_gb": round(torch.cuda.max_memory_allocated() / 1e9, 3),
                "gflop_per_token": round(fpt / 1e9, 4),
                "gflop_parts": {k_: round(v_ / 1e9, 4) for k_, v_ in parts.items()},
                "B": B, "T": T, "chunk": chunk, "params": n_params,
                "steps": args.steps, "warmup": args.warmup, "warmup_s": round(warm_s, 1),
                "step_ms_min": round(min(ms), 3), "step_ms_max": round(max(ms), 3),
                "wall_step_ms": round(1e3 * wall / args.steps, 3),
                "loss": round(float(loss.detach()), 4)}
        if runner.impl != "tfla":
            line["fallback"] = "plain-PyTorch chunkwise mLSTM, not TFLA: " + "; ".join(fallback_why)
        if notes:
            line["notes"] = notes
        emit(line)
        if args.profile > 0:
            profile_step(step, block_mask, w, args.profile)
    return rc


def profile_step(step, block_mask, window, top):
    """One training step under torch.profiler: the `top` CUDA kernels by total device time, grouped by
    name, with their share of the step's kernel time (launch gaps excluded), as JSON lines."""
    from torch.profiler import ProfilerActivity, profile
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        step(block_mask)
        torch.cuda.synchronize()
    rows = [(e.key, e.device_time_total if hasattr(e, "device_time_total") else e.cuda_time_total, e.count)
            for e in prof.key_averages()]
    rows = [r for r in rows if r[1] > 0]
    total = sum(r[1] for r in rows)
    emit({"bench": "train_baseline_profile", "window": window, "kernel_ms": round(total / 1e3, 3),
          "kernels": len(rows)})
    for name, us, n in sorted(rows, key=lambda r: -r[1])[:top]:
        emit({"bench": "train_baseline_profile", "window": window, "kernel": name[:90], "ms": round(us / 1e3, 3),
              "share": round(us / total, 4) if total else None, "calls": n})


if __name__ == "__main__":
    sys.exit(main())
