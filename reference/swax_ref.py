#!/usr/bin/env python3
"""swax_ref.py — the PyTorch twin of swax: the correctness oracle of the C model.

One readable file: the model (SPEC §2), safetensors I/O in pure Python, and a CLI
(`logits`, `check`, `adamw`, `bench`, `init`, `selftest`). Runs under Debian's
/usr/bin/python3 (torch 1.13 CPU, numpy 1.24) and under PyTorch 2.x on a GPU.
Nothing is detached: autograd differentiates through the mLSTM stabiliser m and the
max(|den|, exp(-m)) normaliser, so the gradients are those of the function itself.
See reference/README.md for the commands and the conventions the C side must match.
"""
import os
import sys


def _thread_env_from_argv(argv):
    # OpenBLAS and OpenMP read their thread counts when the libraries load, i.e. at
    # `import torch`; torch.set_num_threads alone may leave the BLAS at another count.
    def value(flag):
        for i, a in enumerate(argv):
            if a == flag and i + 1 < len(argv):
                return argv[i + 1]
            if a.startswith(flag + "="):
                return a.split("=", 1)[1]
        return None
    # torch's OpenMP pool and OpenBLAS's own pthreads share the cores: with the default
    # (spinning) wait the idle pool steals the cores from the busy one; a bench step on
    # the loaded 2-core VM took 14.7 s spinning and 3.9 s passive.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    n, nb = value("--threads"), value("--blas-threads")
    if n is not None and n.isdigit() and int(n) > 0:
        os.environ["OMP_NUM_THREADS"] = n
        os.environ["OPENBLAS_NUM_THREADS"] = n
    if nb is not None and nb.isdigit() and int(nb) > 0:
        os.environ["OPENBLAS_NUM_THREADS"] = nb


if __name__ == "__main__":
    _thread_env_from_argv(sys.argv)

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import struct  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# ----------------------------------------------------------------------------- config

DEFAULTS = dict(pattern="AM", head_dim=64, rope_theta=10000.0, mlstm_heads=4,
                gate_softcap=15.0, logit_softcap=30.0, norm_eps=1e-6,
                tie_embeddings=False, igate_bias_init=-10.0, eot_token=-1, gdn_heads=0)

# SPEC §4 presets (the C presets are authoritative; these serve `bench` and `init`).
PRESETS = {
    "tiny": dict(vocab_size=4096, d_model=128, n_blocks=4, attn_heads=2, mlstm_heads=2, window=128),
    "small": dict(vocab_size=4096, d_model=384, n_blocks=8, attn_heads=6, mlstm_heads=4, window=512),
    "bench-cpu": dict(vocab_size=4096, d_model=256, n_blocks=8, attn_heads=4, mlstm_heads=2,
                      ffn_dim=704, window=128),
    "bench-gpu": dict(vocab_size=50304, vocab_used=50257, d_model=1024, n_blocks=12, attn_heads=16,
                      mlstm_heads=4, ffn_dim=2752, window=2048),
    "1.4b": dict(vocab_size=50304, vocab_used=50257, d_model=2048, n_blocks=24, attn_heads=16,
                 head_dim=128, mlstm_heads=8, window=2048),
    "7b": dict(vocab_size=50304, vocab_used=50257, d_model=4096, n_blocks=32, attn_heads=32,
               head_dim=128, mlstm_heads=8, window=2048),
}


def make_config(d):
    """Fills SPEC §2 defaults into a config.json dict and validates it. Unknown keys
    (format, version, tokenizer fields) are kept but ignored."""
    c = dict(DEFAULTS)
    c.update(d)
    for key in ("vocab_size", "d_model", "n_blocks"):
        if key not in c:
            raise ValueError("config: missing field %r" % key)
    D = int(c["d_model"])
    c.setdefault("attn_heads", max(1, D // 64))
    c.setdefault("ffn_dim", (8 * D + 191) // 192 * 64)   # round_up(8/3 D, 64)
    c.setdefault("window", 2048)
    if c.get("vocab_used") is None:
        c["vocab_used"] = c["vocab_size"]
    for key in ("vocab_size", "vocab_used", "d_model", "n_blocks", "attn_heads", "head_dim",
                "window", "mlstm_heads", "ffn_dim"):
        c[key] = int(c[key])
        if c[key] < 1:
            raise ValueError("config: %s must be >= 1" % key)
    for key in ("rope_theta", "gate_softcap", "logit_softcap", "norm_eps", "igate_bias_init"):
        c[key] = float(c[key])
    c["tie_embeddings"] = bool(c["tie_embeddings"])
    c["eot_token"] = int(c["eot_token"])
    c["gdn_heads"] = int(c["gdn_heads"] or 0) or c["mlstm_heads"]   # 0: as mlstm_heads
    if not c["pattern"] or any(ch not in "AMD" for ch in c["pattern"]):
        raise ValueError("config: pattern must be a non-empty string over 'A', 'M' and 'D'")
    if "D" in c["pattern"] and D % (2 * c["gdn_heads"]):
        raise ValueError("config: d_model must be a multiple of 2*gdn_heads")
    if c["vocab_used"] > c["vocab_size"]:
        raise ValueError("config: vocab_used > vocab_size")
    if c["head_dim"] % 2:
        raise ValueError("config: head_dim must be even (RoPE rotate-half)")
    if D % (2 * c["mlstm_heads"]):
        raise ValueError("config: d_model must be a multiple of 2*mlstm_heads")
    if c["rope_theta"] <= 0 or c["norm_eps"] < 0 or c["gate_softcap"] < 0 or c["logit_softcap"] < 0:
        raise ValueError("config: rope_theta > 0, norm_eps, gate_softcap, logit_softcap >= 0")
    return c


def load_config_arg(arg):
    """A preset name or a JSON file (config.json, or a checkpoint folder)."""
    if arg in PRESETS:
        return make_config(PRESETS[arg])
    path = os.path.join(arg, "config.json") if os.path.isdir(arg) else arg
    with open(path) as f:
        return make_config(json.load(f))


def tensor_names(cfg):
    """(name, shape) of every tensor in docs/checkpoint.md order (the C model's memory order)."""
    D, V, Fd = cfg["d_model"], cfg["vocab_size"], cfg["ffn_dim"]
    HD, NH = cfg["attn_heads"] * cfg["head_dim"], cfg["mlstm_heads"]
    out = [("embed.weight", (V, D))]
    for i in range(cfg["n_blocks"]):
        p = "blocks.%d." % i
        out.append((p + "norm1.weight", (D,)))
        kind = cfg["pattern"][i % len(cfg["pattern"])]
        if kind == "A":
            out += [(p + "attn.wq.weight", (HD, D)), (p + "attn.wk.weight", (HD, D)),
                    (p + "attn.wv.weight", (HD, D)), (p + "attn.wo.weight", (D, HD))]
        elif kind == "D":
            g, GH = p + "gdn.", cfg["gdn_heads"]
            out += [(g + "wq.weight", (D // 2, D)), (g + "wk.weight", (D // 2, D)),
                    (g + "wv.weight", (D, D)), (g + "wg.weight", (D, D)),
                    (g + "wb.weight", (GH, D)), (g + "wa.weight", (GH, D)),
                    (g + "conv_q.weight", (D // 2, 4)), (g + "conv_k.weight", (D // 2, 4)),
                    (g + "conv_v.weight", (D, 4)), (g + "A_log", (GH,)), (g + "dt_bias", (GH,)),
                    (g + "norm.weight", (D,)), (g + "wo.weight", (D, D))]
        else:
            m = p + "mlstm."
            out += [(m + "wq.weight", (D // 2, D)), (m + "wk.weight", (D // 2, D)),
                    (m + "wv.weight", (D, D)), (m + "wog.weight", (D, D)),
                    (m + "wi.weight", (NH, D)), (m + "wf.weight", (NH, D)),
                    (m + "wi.bias", (NH,)), (m + "wf.bias", (NH,)),
                    (m + "norm.weight", (D,)), (m + "wo.weight", (D, D))]
        out += [(p + "norm2.weight", (D,)), (p + "ffn.w_gate.weight", (Fd, D)),
                (p + "ffn.w_up.weight", (Fd, D)), (p + "ffn.w_down.weight", (D, Fd))]
    out.append(("norm.weight", (D,)))
    if not cfg["tie_embeddings"]:
        out.append(("lm_head.weight", (V, D)))
    return out

# ----------------------------------------------------------------------------- model pieces


def softcap(x, c):
    return c * torch.tanh(x / c) if c > 0 else x


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def doc_starts(doc_start, B, T, device):
    """(B, 1, T) bool with position 0 always a start (broadcasts over heads)."""
    if doc_start is None:
        ds = torch.zeros(B, T, dtype=torch.bool, device=device)
    else:
        ds = doc_start.to(device=device, dtype=torch.bool).clone()
    ds[:, 0] = True
    return ds[:, None, :]


def start_index(ds):
    """For every position, the index of the document start at or before it."""
    T = ds.shape[-1]
    idx = torch.arange(T, device=ds.device).expand(ds.shape) * ds.long()
    return torch.cummax(idx, dim=-1).values


def rope_tables(T, dh, theta, dtype, device):
    # angles in float64 (SPEC §2: fp32 angles drift by 0.03 rad at position 1M)
    j = torch.arange(dh // 2, dtype=torch.float64, device=device)
    inv = torch.pow(torch.tensor(theta, dtype=torch.float64, device=device), -2.0 * j / dh)
    ang = torch.arange(T, dtype=torch.float64, device=device)[:, None] * inv[None, :]
    return torch.cos(ang).to(dtype), torch.sin(ang).to(dtype)


def apply_rope(x, cos, sin):
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


def swa_mask(ds, window):
    """(B, 1, T, T): query i sees key j iff 0 <= i-j < w and no document starts in (j, i]."""
    T = ds.shape[-1]
    ar = torch.arange(T, device=ds.device)
    diff = ar[:, None] - ar[None, :]
    band = (diff >= 0) & (diff < window)
    doc = torch.cumsum(ds[:, 0].long(), dim=-1)                  # (B, T) document id
    same = doc[:, :, None] == doc[:, None, :]
    return (band[None] & same)[:, None]

# ----------------------------------------------------------------------------- mLSTM cell
# All three take q, k (B, NH, T, DQK), v (B, NH, T, DV), the soft-capped gate
# pre-activations ig, fg (B, NH, T) and doc_start (B, T) or None; they return h
# (B, NH, T, DV) before the per-head LayerNorm. They compute the same function
# (same stabiliser m) up to rounding.


def mlstm_parallel(q, k, v, ig, fg, doc_start=None, eps=1e-6):
    """Quadratic form, the oracle: logD_ts = F_t - F_s + i_s, m_t = max(F_t + m_0, max_s logD_ts)."""
    B, NH, T, DQK = q.shape
    lf = F.logsigmoid(fg)
    Fc = torch.cumsum(lf, dim=-1)
    ds = doc_starts(doc_start, B, T, q.device)
    seg = torch.cumsum(ds.long(), dim=-1)
    st = start_index(ds).expand(B, NH, T)
    # F_t + m_0 restarts at the document start: the sum of lf over the document up to t
    carry = Fc - (Fc - lf).gather(-1, st)
    logD = Fc[..., :, None] - Fc[..., None, :] + ig[..., None, :]
    ar = torch.arange(T, device=q.device)
    valid = (ar[:, None] >= ar[None, :]) & (seg[..., :, None] == seg[..., None, :])
    logD = logD.masked_fill(~valid, float("-inf"))
    m = torch.maximum(carry, logD.amax(dim=-1))
    S = (q @ k.transpose(-1, -2)) * (DQK ** -0.5) * torch.exp(logD - m[..., None])
    num = S @ v
    den = S.sum(dim=-1)
    return num / (torch.maximum(den.abs(), torch.exp(-m)) + eps)[..., None]


def mlstm_chunkwise(q, k, v, ig, fg, doc_start=None, eps=1e-6, chunk=64):
    """Chunks of L tokens, state (C, n, m) carried between them (SPEC §2).

    Vectorised over batch, heads AND chunks: only the state recurrences (the scalar m
    of each chunk's last token, then C and n) loop over chunks. T is padded to a
    multiple of L at the end; padding only follows real tokens, so it changes nothing
    but the final state, which is not used. Document starts inside a chunk are masks,
    not splits: a token after a start in its chunk gets no carried state and its own
    fresh F + m_0 term (m_0 = 0); the state leaving a chunk is the one of its last
    token, so m' is that token's m."""
    B, NH, T, DQK = q.shape
    DV = v.shape[-1]
    L = int(chunk)
    if L < 1:
        raise ValueError("chunk must be >= 1")
    nc = (T + L - 1) // L
    pad = nc * L - T
    ds = doc_starts(doc_start, B, T, q.device)
    lf = F.logsigmoid(fg)
    qs = q * (DQK ** -0.5)
    if pad:
        qs, k, v = [F.pad(x, (0, 0, 0, pad)) for x in (qs, k, v)]
        lf, ig = F.pad(lf, (0, pad)), F.pad(ig, (0, pad))
        ds = F.pad(ds, (0, pad))
    qs, k, v = [x.reshape(B, NH, nc, L, x.shape[-1]) for x in (qs, k, v)]
    lf, ig = lf.reshape(B, NH, nc, L), ig.reshape(B, NH, nc, L)
    ds = ds.reshape(B, 1, nc, L)
    b = torch.cumsum(lf, dim=-1)                      # b_t inside each chunk
    segc = torch.cumsum(ds.long(), dim=-1)            # 0: still the document carried in
    fresh = (segc > 0).expand(B, NH, nc, L)
    st = start_index(ds).expand(B, NH, nc, L)
    fresh_carry = b - (b - lf).gather(-1, st)         # F + m_0 of a document started in the chunk
    ar = torch.arange(L, device=q.device)
    valid = (ar[:, None] >= ar[None, :]) & (segc[..., :, None] == segc[..., None, :])
    logD = (b[..., :, None] - b[..., None, :] + ig[..., None, :]).masked_fill(~valid, float("-inf"))
    rowmax = logD.amax(dim=-1)
    # m_prev of every chunk: the recurrence m' = max(carry of the last token, its row max)
    mp = [q.new_zeros(B, NH)]
    for c in range(nc - 1):
        carry = torch.where(fresh[:, :, c, -1], fresh_carry[:, :, c, -1], b[:, :, c, -1] + mp[-1])
        mp.append(torch.maximum(carry, rowmax[:, :, c, -1]))
    m_prev = torch.stack(mp, dim=2)                   # (B, NH, nc)
    carry = torch.where(fresh, fresh_carry, b + m_prev[..., None])
    m = torch.maximum(carry, rowmax)
    wstate = torch.where(fresh, torch.zeros_like(m), torch.exp(carry - m))
    Dm = torch.exp(logD - m[..., None])
    # states entering each chunk: C_c = w_c C_{c-1} + sum_s e^{a_s - m'} k_s v_s^T
    ka = k * Dm[..., -1, :, None]                     # e^{a_s - m'}: 0 outside the last document
    KV = ka.transpose(-1, -2) @ v                     # (B, NH, nc, DQK, DV)
    Kn = ka.sum(dim=-2)
    wl = wstate[..., -1]
    Cs, ns = [q.new_zeros(B, NH, DQK, DV)], [q.new_zeros(B, NH, DQK)]
    for c in range(nc - 1):
        Cs.append(wl[:, :, c, None, None] * Cs[-1] + KV[:, :, c])
        ns.append(wl[:, :, c, None] * ns[-1] + Kn[:, :, c])
    C_prev, n_prev = torch.stack(Cs, dim=2), torch.stack(ns, dim=2)
    S = (qs @ k.transpose(-1, -2)) * Dm
    num = wstate[..., None] * (qs @ C_prev) + S @ v
    den = wstate * (qs @ n_prev[..., None])[..., 0] + S.sum(dim=-1)
    h = num / (torch.maximum(den.abs(), torch.exp(-m)) + eps)[..., None]
    return h.reshape(B, NH, nc * L, DV)[:, :, :T]


def mlstm_recurrent(q, k, v, ig, fg, doc_start=None, eps=1e-6):
    """Step by step, the stabilised recurrence of SPEC §2 (the decode form)."""
    B, NH, T, DQK = q.shape
    DV = v.shape[-1]
    qs = q * (DQK ** -0.5)
    lf = F.logsigmoid(fg)
    ds = doc_starts(doc_start, B, T, q.device)[:, 0]           # (B, T)
    C = q.new_zeros(B, NH, DQK, DV)
    n = q.new_zeros(B, NH, DQK)
    m = q.new_zeros(B, NH)
    hs = []
    for t in range(T):
        r = ds[:, t, None]                                       # reset before this token
        C = torch.where(r[..., None, None], torch.zeros_like(C), C)
        n = torch.where(r[..., None], torch.zeros_like(n), n)
        m = torch.where(r, torch.zeros_like(m), m)
        mn = torch.maximum(lf[..., t] + m, ig[..., t])
        fp = torch.exp(lf[..., t] + m - mn)
        ip = torch.exp(ig[..., t] - mn)
        kt, vt, qt = k[:, :, t], v[:, :, t], qs[:, :, t]
        C = fp[..., None, None] * C + ip[..., None, None] * kt[..., :, None] * vt[..., None, :]
        n = fp[..., None] * n + ip[..., None] * kt
        num = (qt[..., :, None] * C).sum(dim=-2)
        den = (n * qt).sum(dim=-1)
        hs.append(num / (torch.maximum(den.abs(), torch.exp(-mn)) + eps)[..., None])
        m = mn
    return torch.stack(hs, dim=2)


def mlstm_cell(q, k, v, ig, fg, doc_start=None, eps=1e-6, form="chunkwise", chunk=64):
    if form == "parallel":
        return mlstm_parallel(q, k, v, ig, fg, doc_start, eps)
    if form == "chunkwise":
        return mlstm_chunkwise(q, k, v, ig, fg, doc_start, eps, chunk)
    if form == "recurrent":
        return mlstm_recurrent(q, k, v, ig, fg, doc_start, eps)
    raise ValueError("unknown mLSTM form %r" % form)

# ----------------------------------------------------------------------------- Gated DeltaNet cell
# Both take q, k (B, NH, T, DK) -- L2-normalised, q also scaled by DK^-1/2 --, v (B, NH, T, DV),
# beta, g (B, NH, T) (g = log alpha <= 0) and doc_start (B, T) or None; they return o (B, NH, T, DV),
# o_t = S_t q_t with S_t = alpha_t S_{t-1} (I - beta_t k_t k_t^T) + beta_t v_t k_t^T (S is DV x DK),
# S <- 0 before a document's first token.


def gdn_recurrent(q, k, v, beta, g, doc_start=None):
    """Step by step (the decode form and the oracle)."""
    B, NH, T, DK = q.shape
    DV = v.shape[-1]
    ds = doc_starts(doc_start, B, T, q.device)[:, 0]            # (B, T)
    S = q.new_zeros(B, NH, DV, DK)
    outs = []
    for t in range(T):
        S = torch.where(ds[:, t, None, None, None], torch.zeros_like(S), S)
        a = torch.exp(g[..., t])[..., None, None]
        kt = k[:, :, t]
        Sk = (S @ kt[..., None])[..., 0]                          # (B, NH, DV)
        u = beta[..., t, None] * (v[:, :, t] - a[..., 0] * Sk)
        S = a * S + u[..., :, None] * kt[..., None, :]
        outs.append((S @ q[:, :, t, :, None])[..., 0])
    return torch.stack(outs, dim=2)


def gdn_chunkwise(q, k, v, beta, g, doc_start=None, chunk=64):
    """Chunks of L tokens aligned to multiples of L, state S carried between them; inside a
    chunk the UT transform T = (I + A)^-1 of A_ij = beta_i e^{G_i - G_j} k_i.k_j (j < i) gives
    W = T diag(beta gamma) K, U = T diag(beta) V and the chunk's deltas U - W S^T (SPEC §2).
    Document starts inside a chunk are masks (the C code cuts its chunks there instead): no
    term joins two documents, and tokens after a start do not see the carried state."""
    B, NH, T, DK = q.shape
    DV = v.shape[-1]
    L = int(chunk)
    if L < 1:
        raise ValueError("chunk must be >= 1")
    nc = (T + L - 1) // L
    pad = nc * L - T
    ds = doc_starts(doc_start, B, T, q.device)                 # (B, 1, T)
    if pad:
        q, k, v = [F.pad(x, (0, 0, 0, pad)) for x in (q, k, v)]
        beta, g = F.pad(beta, (0, pad)), F.pad(g, (0, pad))
        ds = F.pad(ds, (0, pad))
    ar = torch.arange(L, device=q.device)
    tril, eye = ar[:, None] >= ar[None, :], torch.eye(L, dtype=q.dtype, device=q.device)
    S = q.new_zeros(B, NH, DV, DK)
    outs = []
    for c in range(nc):
        sl = slice(c * L, (c + 1) * L)
        qc, kc, vc, bc, gc = q[:, :, sl], k[:, :, sl], v[:, :, sl], beta[..., sl], g[..., sl]
        seg = torch.cumsum(ds[..., sl].long(), dim=-1)          # (B, 1, L); 0: the carried document
        valid = tril & (seg[..., :, None] == seg[..., None, :])
        G = torch.cumsum(gc, dim=-1)
        M = torch.exp((G[..., :, None] - G[..., None, :]).masked_fill(~valid, float("-inf")))
        gam = torch.where(seg > 0, torch.zeros_like(G), torch.exp(G))
        A = bc[..., :, None] * M * (kc @ kc.transpose(-1, -2)) * (1 - eye)
        Tm = torch.linalg.solve_triangular(eye + A, eye.expand_as(A), upper=False, unitriangular=True)
        W = Tm @ ((bc * gam)[..., None] * kc)
        U = Tm @ (bc[..., None] * vc)
        Dl = U - W @ S.transpose(-1, -2)
        outs.append(gam[..., None] * (qc @ S.transpose(-1, -2)) + (M * (qc @ kc.transpose(-1, -2))) @ Dl)
        S = gam[..., -1, None, None] * S + (Dl * M[..., -1, :, None]).transpose(-1, -2) @ kc
    return torch.cat(outs, dim=2)[:, :, :T]


def gdn_cell(q, k, v, beta, g, doc_start=None, form="chunkwise", chunk=64):
    if form == "chunkwise":
        return gdn_chunkwise(q, k, v, beta, g, doc_start, chunk)
    if form in ("recurrent", "parallel"):                     # the recurrence is the oracle
        return gdn_recurrent(q, k, v, beta, g, doc_start)
    raise ValueError("unknown Gated DeltaNet form %r" % form)


def causal_conv(x, w, ds):
    """x (B, T, C), w (C, 4): out[t] = sum_i w[c, i] x[t - 3 + i], x = 0 before the document."""
    B, T, C = x.shape
    st = start_index(ds)                                        # (B, T)
    ar = torch.arange(T, device=x.device)
    out = 0
    for j in range(4):
        xs = F.pad(x, (0, 0, j, 0))[:, :T]                      # x[t - j]
        ok = (ar - j >= st)[..., None]
        out = out + w[:, 3 - j] * torch.where(ok, xs, torch.zeros_like(xs))
    return out

# ----------------------------------------------------------------------------- modules


class Weight(nn.Module):
    """A module that only holds `.weight` (norm scales), so state_dict names match."""

    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))


class ConvW(nn.Module):
    """Depthwise causal convolution weights (C, 4) held as `.weight`."""

    def __init__(self, c):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(c, 4))


def linear(i, o, bias=False):
    return nn.Linear(i, o, bias=bias)


class SWA(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        D, self.H, self.dh = cfg["d_model"], cfg["attn_heads"], cfg["head_dim"]
        HD = self.H * self.dh
        self.wq, self.wk, self.wv = linear(D, HD), linear(D, HD), linear(D, HD)
        self.wo = linear(HD, D)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape

        def heads(t):
            return t.view(B, T, self.H, self.dh).transpose(1, 2)
        q = apply_rope(heads(self.wq(x)), cos, sin) * (self.dh ** -0.5)   # scale q, not the T x T scores
        k = apply_rope(heads(self.wk(x)), cos, sin)
        v = heads(self.wv(x))
        p = torch.softmax((q @ k.transpose(-1, -2)).masked_fill(~mask, float("-inf")), dim=-1)
        return self.wo((p @ v).transpose(1, 2).reshape(B, T, self.H * self.dh))


class MLSTM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        D, NH = cfg["d_model"], cfg["mlstm_heads"]
        self.NH, self.cap, self.eps = NH, cfg["gate_softcap"], cfg["norm_eps"]
        self.wq, self.wk = linear(D, D // 2), linear(D, D // 2)
        self.wv, self.wog = linear(D, D), linear(D, D)
        self.wi, self.wf = linear(D, NH, bias=True), linear(D, NH, bias=True)
        self.norm = Weight(D)
        self.wo = linear(D, D)

    def forward(self, x, doc_start, form, chunk):
        B, T, D = x.shape
        NH = self.NH

        def heads(t):
            return t.view(B, T, NH, -1).transpose(1, 2)
        q, k, v = heads(self.wq(x)), heads(self.wk(x)), heads(self.wv(x))
        ig = softcap(self.wi(x), self.cap).transpose(1, 2)       # (B, NH, T)
        fg = softcap(self.wf(x), self.cap).transpose(1, 2)
        h = mlstm_cell(q, k, v, ig, fg, doc_start, self.eps, form, chunk)
        # per-head LayerNorm over DV: mean-centred, no bias
        hc = h - h.mean(dim=-1, keepdim=True)
        h = hc * torch.rsqrt(hc.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        h = h.transpose(1, 2).reshape(B, T, D) * self.norm.weight
        return self.wo(torch.sigmoid(self.wog(x)) * h)


class GDN(nn.Module):
    """The Gated DeltaNet layer (SPEC §2, pattern letter D)."""

    def __init__(self, cfg):
        super().__init__()
        D, NH = cfg["d_model"], cfg["gdn_heads"]
        self.NH, self.eps = NH, cfg["norm_eps"]
        self.wq, self.wk = linear(D, D // 2), linear(D, D // 2)
        self.wv, self.wg = linear(D, D), linear(D, D)
        self.wb, self.wa = linear(D, NH), linear(D, NH)
        self.conv_q, self.conv_k, self.conv_v = ConvW(D // 2), ConvW(D // 2), ConvW(D)
        self.A_log = nn.Parameter(torch.zeros(NH))
        self.dt_bias = nn.Parameter(torch.zeros(NH))
        self.norm = Weight(D)
        self.wo = linear(D, D)

    def forward(self, x, doc_start, form, chunk):
        B, T, D = x.shape
        NH = self.NH

        def heads(t):
            return t.view(B, T, NH, -1).transpose(1, 2)
        q = heads(F.silu(causal_conv(self.wq(x), self.conv_q.weight, doc_start)))
        k = heads(F.silu(causal_conv(self.wk(x), self.conv_k.weight, doc_start)))
        v = heads(F.silu(causal_conv(self.wv(x), self.conv_v.weight, doc_start)))
        q = q * torch.rsqrt(q.pow(2).sum(-1, keepdim=True) + 1e-6) * (q.shape[-1] ** -0.5)
        k = k * torch.rsqrt(k.pow(2).sum(-1, keepdim=True) + 1e-6)
        beta = torch.sigmoid(self.wb(x)).transpose(1, 2)                       # (B, NH, T)
        g = (-torch.exp(self.A_log) * F.softplus(self.wa(x) + self.dt_bias)).transpose(1, 2)
        o = gdn_cell(q, k, v, beta, g, doc_start, form, chunk)
        o = o * torch.rsqrt(o.pow(2).mean(dim=-1, keepdim=True) + self.eps)     # per-head RMSNorm
        o = o.transpose(1, 2).reshape(B, T, D) * self.norm.weight
        return self.wo(o * F.silu(self.wg(x)))


class FFN(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        D, Fd = cfg["d_model"], cfg["ffn_dim"]
        self.w_gate, self.w_up, self.w_down = linear(D, Fd), linear(D, Fd), linear(Fd, D)

    def forward(self, x):
        return self.w_down(F.silu(self.w_gate(x)) * self.w_up(x))


class Block(nn.Module):
    def __init__(self, cfg, kind):
        super().__init__()
        self.kind, self.eps = kind, cfg["norm_eps"]
        self.norm1 = Weight(cfg["d_model"])
        if kind == "A":
            self.attn = SWA(cfg)
        elif kind == "D":
            self.gdn = GDN(cfg)
        else:
            self.mlstm = MLSTM(cfg)
        self.norm2 = Weight(cfg["d_model"])
        self.ffn = FFN(cfg)

    def forward(self, x, ctx):
        y = rms_norm(x, self.norm1.weight, self.eps)
        if self.kind == "A":
            x = x + self.attn(y, ctx["cos"], ctx["sin"], ctx["mask"])
        elif self.kind == "D":
            x = x + self.gdn(y, ctx["doc_start"], ctx["form"], ctx["chunk"])
        else:
            x = x + self.mlstm(y, ctx["doc_start"], ctx["form"], ctx["chunk"])
        return x + self.ffn(rms_norm(x, self.norm2.weight, self.eps))


class SwaxModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg = make_config(cfg)
        self.embed = nn.Embedding(cfg["vocab_size"], cfg["d_model"])
        pat = cfg["pattern"]
        self.blocks = nn.ModuleList(Block(cfg, pat[i % len(pat)]) for i in range(cfg["n_blocks"]))
        self.norm = Weight(cfg["d_model"])
        if not cfg["tie_embeddings"]:
            self.lm_head = linear(cfg["d_model"], cfg["vocab_size"])

    @torch.no_grad()
    def init_weights(self, seed=0):
        """SPEC §2 initialisation (xLSTM-7B recipe); the RNG is torch's, not the C one's."""
        cfg = self.cfg
        g = torch.Generator().manual_seed(int(seed))
        D, NH = cfg["d_model"], cfg["mlstm_heads"]
        small, out = math.sqrt(2.0 / (5 * D)), 2.0 / (cfg["n_blocks"] * math.sqrt(D))
        for name, p in self.named_parameters():
            leaf = name.split(".")[-2] if name.count(".") else name
            if ".gdn.conv_" in name:                       # U(-1/sqrt(4), 1/sqrt(4))
                std = None
                p.copy_(torch.rand(p.shape, generator=g, dtype=torch.float64) - 0.5)
            elif name.endswith("gdn.A_log"):                 # log U[1, 16]
                std = None
                p.copy_(torch.log(1 + 15 * torch.rand(p.shape, generator=g, dtype=torch.float64)))
            elif name.endswith("gdn.dt_bias"):               # softplus^-1(dt), dt log-uniform [1e-3, 0.1]
                std = None
                dt = torch.exp(math.log(1e-3) + math.log(100.0) * torch.rand(p.shape, generator=g,
                                                                               dtype=torch.float64))
                p.copy_(dt + torch.log(-torch.expm1(-dt)))
            elif name.endswith("norm.weight") or leaf in ("norm1", "norm2", "norm"):
                std = None
                p.fill_(1.0)
            elif name.endswith("wi.bias"):
                std = None
                p.fill_(cfg["igate_bias_init"])
            elif name.endswith("wf.bias"):
                std = None
                p.copy_(torch.linspace(3.0, 6.0, NH, dtype=torch.float64))
            elif leaf in ("wi", "wf", "wog"):
                std = None
                p.zero_()
            elif leaf in ("wo", "w_down"):
                std = out
            else:                       # embed, wq/wk/wv, w_gate, w_up, lm_head
                std = small
            if std is not None:
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * std)
        return self

    def ordered_state(self):
        """(name, tensor) in docs/checkpoint.md order."""
        sd = self.state_dict()
        return [(name, sd[name]) for name, _ in tensor_names(self.cfg)]

    def forward(self, tokens, doc_start=None, window=None, chunk=64, form="chunkwise"):
        """tokens (B, T) int -> logits (B, T, V) after the soft cap, padded ids at -inf."""
        cfg = self.cfg
        B, T = tokens.shape
        window = cfg["window"] if window is None else int(window)
        if window < 1:
            raise ValueError("window must be >= 1")
        dev = self.embed.weight.device
        dtype = self.embed.weight.dtype
        ds = doc_starts(doc_start, B, T, dev)
        ctx = dict(doc_start=ds[:, 0], form=form, chunk=chunk)
        if "A" in cfg["pattern"]:
            ctx["cos"], ctx["sin"] = rope_tables(T, cfg["head_dim"], cfg["rope_theta"], dtype, dev)
            ctx["mask"] = swa_mask(ds, window)
        x = self.embed(tokens.to(dev))
        for blk in self.blocks:
            x = blk(x, ctx)
        x = rms_norm(x, self.norm.weight, cfg["norm_eps"])
        w = self.embed.weight if cfg["tie_embeddings"] else self.lm_head.weight
        logits = softcap(F.linear(x, w), cfg["logit_softcap"])
        if cfg["vocab_used"] < cfg["vocab_size"]:
            pad = torch.arange(cfg["vocab_size"], device=dev) >= cfg["vocab_used"]
            logits = logits.masked_fill(pad, float("-inf"))
        return logits


def decay_groups(model, wd):
    """AdamW groups: weight decay on 2-D weight matrices, none on norms, gate biases, the
    Gated DeltaNet's A_log, dt_bias and (2-D) convolution weights (SPEC §2, §4)."""
    named = list(model.named_parameters())
    dec = [p for n, p in named if p.dim() >= 2 and ".gdn.conv_" not in n]
    nodec = [p for n, p in named if not (p.dim() >= 2 and ".gdn.conv_" not in n)]
    return [dict(params=dec, weight_decay=wd), dict(params=nodec, weight_decay=0.0)]


def lm_loss(logits, targets):
    """Mean cross-entropy over targets >= 0 (negative targets are ignored)."""
    lp = F.log_softmax(logits, dim=-1)
    valid = targets >= 0
    nll = -lp.gather(-1, targets.clamp(min=0)[..., None])[..., 0]
    nll = torch.where(valid, nll, torch.zeros_like(nll))   # where: no inf*0 for ignored rows
    return nll.sum() / valid.sum().clamp(min=1)

# ----------------------------------------------------------------------------- safetensors

_ST_DTYPES = {"F64": ("<f8", 8), "F32": ("<f4", 4), "F16": ("<f2", 2), "BF16": ("<u2", 2),
              "I64": ("<i8", 8), "I32": ("<i4", 4), "I16": ("<i2", 2), "I8": ("i1", 1),
              "U8": ("u1", 1), "U16": ("<u2", 2)}
_NP_TO_ST = {np.dtype("float64"): "F64", np.dtype("float32"): "F32", np.dtype("float16"): "F16",
             np.dtype("int64"): "I64", np.dtype("int32"): "I32", np.dtype("int16"): "I16",
             np.dtype("int8"): "I8", np.dtype("uint8"): "U8", np.dtype("uint16"): "U16"}


class FormatError(Exception):
    pass


def read_safetensors(path):
    """-> ({name: np.ndarray}, {metadata}). BF16 comes back as float32 (bits << 16).
    Validates like the reference library: the header is a JSON object, every tensor's
    byte range matches dtype x shape, and the ranges tile the data area exactly."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise FormatError("%s: shorter than the 8-byte header length" % path)
    n = struct.unpack("<Q", data[:8])[0]
    if n > len(data) - 8 or n > 100 << 20:
        raise FormatError("%s: header length %d past the end of the file" % (path, n))
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise FormatError("%s: header is not valid JSON: %s" % (path, e))
    if not isinstance(header, dict):
        raise FormatError("%s: header is not a JSON object" % path)
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(a, str) and isinstance(b, str)
                                             for a, b in meta.items()):
        raise FormatError("%s: __metadata__ must map strings to strings" % path)
    body = memoryview(data)[8 + n:]
    out, ranges = {}, []
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise FormatError("%s: tensor %r: needs exactly dtype, shape, data_offsets" % (path, name))
        dt, shape, offs = info["dtype"], info["shape"], info["data_offsets"]
        if dt not in _ST_DTYPES:
            raise FormatError("%s: tensor %r: unsupported dtype %r" % (path, name, dt))
        if not isinstance(shape, list) or not all(isinstance(s, int) and not isinstance(s, bool)
                                                  and s >= 0 for s in shape):
            raise FormatError("%s: tensor %r: bad shape %r" % (path, name, shape))
        if (not isinstance(offs, list) or len(offs) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) for o in offs)):
            raise FormatError("%s: tensor %r: bad data_offsets %r" % (path, name, offs))
        npdt, size = _ST_DTYPES[dt]
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        b0, b1 = offs
        if not (0 <= b0 <= b1 <= len(body)) or b1 - b0 != count * size:
            raise FormatError("%s: tensor %r: data_offsets %r do not fit %s%r in %d data bytes"
                              % (path, name, offs, dt, shape, len(body)))
        ranges.append((b0, b1, name))
        arr = np.frombuffer(body, dtype=npdt, count=count, offset=b0).reshape(shape).copy()
        if dt == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[name] = arr
    pos = 0
    for b0, b1, name in sorted(ranges):
        if b0 != pos:
            raise FormatError("%s: tensor %r: data overlaps or leaves a hole at byte %d" % (path, name, pos))
        pos = b1
    if pos != len(body):
        raise FormatError("%s: %d trailing data bytes belong to no tensor" % (path, len(body) - pos))
    return out, meta


def write_safetensors(path, tensors, metadata=None):
    """tensors: [(name, array)] or {name: array} (numpy or torch), written in that order."""
    items = list(tensors.items()) if isinstance(tensors, dict) else list(tensors)
    header, blobs, pos = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, a in items:
        if isinstance(a, torch.Tensor):
            a = a.detach().cpu().numpy()
        a = np.asarray(a)                    # (not ascontiguousarray: it turns 0-d into 1-d)
        if a.dtype not in _NP_TO_ST:
            raise FormatError("tensor %r: cannot write dtype %s" % (name, a.dtype))
        raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes(order="C")
        header[name] = {"dtype": _NP_TO_ST[a.dtype], "shape": list(a.shape),
                        "data_offsets": [pos, pos + len(raw)]}
        blobs.append(raw)
        pos += len(raw)
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * (-len(hj) % 8)            # the library pads the header to 8 bytes
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for raw in blobs:
            f.write(raw)
    os.replace(tmp, path)


def load_checkpoint(folder, dtype=torch.float64, device="cpu"):
    with open(os.path.join(folder, "config.json")) as f:
        raw = json.load(f)
    if raw.get("format", "swax") != "swax":
        raise FormatError("%s: config.json format is %r, not 'swax'" % (folder, raw.get("format")))
    model = SwaxModel(raw)
    tensors, _ = read_safetensors(os.path.join(folder, "model.safetensors"))
    want = dict(tensor_names(model.cfg))
    missing = [k for k in want if k not in tensors]
    extra = [k for k in tensors if k not in want]
    if missing or extra:
        raise FormatError("%s: tensors missing %s, unexpected %s" % (folder, missing[:5], extra[:5]))
    sd = {}
    for name, shape in want.items():
        if tuple(tensors[name].shape) != tuple(shape):
            raise FormatError("%s: %s has shape %s, expected %s"
                              % (folder, name, tensors[name].shape, shape))
        sd[name] = torch.from_numpy(tensors[name].astype(np.float64))
    model.load_state_dict(sd, strict=True)
    return model.to(device=device, dtype=dtype)


def save_checkpoint(model, folder):
    os.makedirs(folder, exist_ok=True)
    cfg = {k: model.cfg[k] for k in sorted(model.cfg) if k not in ("format", "version")}
    cfg.update(format="swax", version=1)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1, sort_keys=True)
    write_safetensors(os.path.join(folder, "model.safetensors"),
                      [(k, v.to(torch.float32)) for k, v in model.ordered_state()],
                      {"format": "pt"})

# ----------------------------------------------------------------------------- CLI helpers


def tune_malloc():
    """Keep freed memory in the process. glibc serves blocks over 128 KiB-32 MiB with
    fresh mmaps and returns them on free, so every 64 MiB activation of a training step
    is page-faulted in again; on the 2-core VM that costs more than the arithmetic
    (a 16M-element multiply: 235 ms instead of 8 ms). Numerics are unaffected."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(-3, 1 << 30) == 1        # M_MMAP_THRESHOLD: 1 GiB
        return ok and libc.mallopt(-1, (1 << 31) - 1) == 1   # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        return False


def parse_tokens(s):
    if s.startswith("@"):
        with open(s[1:]) as f:
            s = f.read()
    toks = [int(t) for t in s.replace(",", " ").split()]
    if not toks:
        raise ValueError("no tokens")
    return toks


def rel_err(a, b, floor=1e-2):
    """(max abs err, ||a-b|| / max(||b||, floor)), in float64; 0/0 counts as 0.

    The floor keeps tensors whose true value is (nearly) zero -- e.g. the SWA
    q/k gradients at window 1, where softmax over one key has no gradient --
    from turning float32 rounding (~1e-8) into an infinite relative error:
    below a norm of `floor` the check is absolute (tol * floor)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.size == 0:
        return 0.0, 0.0
    d = a - b
    nb, nd = np.linalg.norm(b), np.linalg.norm(d)
    return float(np.abs(d).max()), (0.0 if nd == 0 else float(nd / max(nb, floor)))


def load_exchange(path, model):
    t, meta = read_safetensors(path)
    for key in ("tokens", "targets"):
        if key not in t or t[key].ndim != 2:
            raise FormatError("%s: needs a 2-D %r tensor" % (path, key))
    tokens = torch.from_numpy(t["tokens"].astype(np.int64))
    targets = torch.from_numpy(t["targets"].astype(np.int64))
    if targets.shape != tokens.shape:
        raise FormatError("%s: targets shape %s != tokens shape %s" % (path, targets.shape, tokens.shape))
    V = model.cfg["vocab_size"]
    if tokens.min() < 0 or tokens.max() >= V or targets.max() >= V:
        raise FormatError("%s: token or target id out of [0, %d)" % (path, V))
    ds = None
    if "doc_start" in t:
        if t["doc_start"].shape != t["tokens"].shape:
            raise FormatError("%s: doc_start shape differs from tokens" % path)
        ds = torch.from_numpy(t["doc_start"] != 0)
    return t, meta, tokens, targets, ds


def meta_num(meta, key, conv, default=None):
    if key not in meta:
        if default is None:
            raise FormatError("exchange metadata lacks %r" % key)
        return default
    return conv(meta[key])


def run_model(model, tokens, targets, ds, window, chunk, form):
    model.zero_grad(set_to_none=True)
    logits = model(tokens, ds, window=window, chunk=chunk, form=form)
    loss = lm_loss(logits, targets)
    loss.backward()
    grads = {n: (p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p))
             for n, p in model.named_parameters()}
    return logits.detach(), loss.detach(), grads

# ----------------------------------------------------------------------------- commands


def cmd_logits(args):
    model = load_checkpoint(args.model, dtype=getattr(torch, args.dtype))
    toks = torch.tensor([parse_tokens(args.tokens)], dtype=torch.long)
    V = model.cfg["vocab_size"]
    if toks.min() < 0 or toks.max() >= V:
        print("error: token id out of [0, %d)" % V, file=sys.stderr)
        return 2
    ds = None
    if args.doc_starts:
        ds = torch.zeros_like(toks, dtype=torch.bool)
        for p in parse_tokens(args.doc_starts):
            ds[0, p] = True
    with torch.no_grad():
        logits = model(toks, ds, window=args.window, chunk=args.chunk, form=args.form)
    np.save(args.out, logits[0].to(torch.float32).numpy())
    return 0


def cmd_check(args):
    model = load_checkpoint(args.model, dtype=torch.float64)
    t, meta, tokens, targets, ds = load_exchange(args.exchange, model)
    window = meta_num(meta, "window", int)
    chunk = meta_num(meta, "chunk", int, 64)
    lg, loss, grads = run_model(model, tokens, targets, ds, window, chunk, "chunkwise")
    lgp, lossp, gradsp = run_model(model, tokens, targets, ds, window, chunk, "parallel")
    # the twin's own consistency: chunkwise vs parallel (float64, should be ~1e-13)
    fin = torch.isfinite(lgp)
    worst = max([rel_err(lg[fin], lgp[fin])[1], rel_err(loss, lossp)[1]]
                + [rel_err(grads[n], gradsp[n])[1] for n in grads])
    ok = bool(worst <= 1e-9) and bool((torch.isfinite(lg) == fin).all())
    print("twin chunkwise(L=%d) vs parallel: worst relative error %.3e %s"
          % (chunk, worst, "ok" if ok else "MISMATCH"))
    B, T = tokens.shape
    print("B=%d T=%d window=%d chunk=%d tol=%g" % (B, T, window, chunk, args.tol))
    print("%-40s %12s %12s" % ("name", "max_abs_err", "rel_err"))

    def row(name, a, b):
        nonlocal ok
        ma, re = rel_err(a, b)
        bad = not (re <= args.tol)
        ok = ok and not bad
        print("%-40s %12.3e %12.3e%s" % (name, ma, re, "  FAIL" if bad else ""))

    twin_logits = lg.numpy()
    if "logits" not in t or t["logits"].shape != twin_logits.shape:
        print("logits: missing or shape %s, expected %s  FAIL"
              % (None if "logits" not in t else t["logits"].shape, twin_logits.shape))
        ok = False
    else:
        cl = t["logits"].astype(np.float64)
        tfin, cfin = np.isfinite(twin_logits), np.isfinite(cl)
        if np.isnan(cl).any() or not np.array_equal(tfin, cfin) or not np.all(cl[~cfin] == -np.inf):
            print("logits: -inf positions differ (or NaN in C logits)  FAIL")
            ok = False
        else:
            row("logits", cl[cfin], twin_logits[tfin])
    if "loss" not in t or t["loss"].size != 1:
        print("loss: missing  FAIL")
        ok = False
    else:
        row("loss", t["loss"].reshape(1), loss.reshape(1).numpy())
    for name, _ in tensor_names(model.cfg):
        key = "grad." + name
        g = grads[name].numpy()
        if key not in t or t[key].shape != g.shape:
            print("%-40s missing or wrong shape  FAIL" % key)
            ok = False
        else:
            row(key, t[key], g)
    unknown = [k for k in t if k.startswith("grad.") and k[5:] not in grads]
    if unknown:
        print("unexpected gradients: %s  FAIL" % unknown[:5])
        ok = False
    print("twin check: %s" % ("OK" if ok else "FAILED"))
    return 0 if ok else 1


def cmd_truth(args):
    """float64 logits, loss and every gradient of a checkpoint on an exchange batch,
    written as float64 safetensors (the C GPU tests measure both backends against it)."""
    model = load_checkpoint(args.model, dtype=torch.float64)
    _, meta, tokens, targets, ds = load_exchange(args.exchange, model)
    window = meta_num(meta, "window", int)
    chunk = meta_num(meta, "chunk", int, 64)
    lg, loss, grads = run_model(model, tokens, targets, ds, window, chunk, "chunkwise")
    out = [("logits", lg.to(torch.float64)), ("loss", loss.reshape(1).to(torch.float64))]
    out += [("grad." + name, grads[name].to(torch.float64)) for name, _ in tensor_names(model.cfg)]
    write_safetensors(args.out, out)
    return 0


def cmd_adamw(args):
    model = load_checkpoint(args.model, dtype=torch.float64)
    t, meta, tokens, targets, ds = load_exchange(args.exchange, model)
    lr, wd = meta_num(meta, "lr", float), meta_num(meta, "weight_decay", float)
    b1, b2 = meta_num(meta, "beta1", float), meta_num(meta, "beta2", float)
    eps, steps = meta_num(meta, "eps", float), meta_num(meta, "steps", int)
    clip = meta_num(meta, "clip", float, 0.0)
    window, chunk = meta_num(meta, "window", int), meta_num(meta, "chunk", int, 64)
    params = list(model.parameters())
    groups = decay_groups(model, wd)
    opt = torch.optim.AdamW(groups, lr=lr, betas=(b1, b2), eps=eps)
    losses = []
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = lm_loss(model(tokens, ds, window=window, chunk=chunk), targets)
        loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        losses.append(float(loss.detach()))
    losses = np.array(losses, dtype=np.float64)
    np.save(args.out, losses)
    c = t.get("losses")
    ok = c is not None and c.size == steps
    print("%5s %16s %16s %10s" % ("step", "C", "twin", "rel_err"))
    for i in range(steps):
        cv = float(c.ravel()[i]) if ok else float("nan")
        re = abs(cv - losses[i]) / max(abs(losses[i]), 1e-30)
        bad = not (re <= args.tol)
        ok = ok and not bad
        print("%5d %16.9g %16.9g %10.3e%s" % (i, cv, losses[i], re, "  FAIL" if bad else ""))
    print("twin adamw: %s" % ("OK" if ok else "FAILED"))
    return 0 if ok else 1


def cmd_init(args):
    cfg = load_config_arg(args.config)
    model = SwaxModel(cfg).to(torch.float64).init_weights(args.seed)
    save_checkpoint(model, args.out)
    print("wrote %s (%d parameters)" % (args.out, sum(p.numel() for p in model.parameters())))
    return 0


def cmd_bench(args):
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    if args.model:
        model = load_checkpoint(args.model, dtype=torch.float32, device=dev)
    else:
        model = SwaxModel(load_config_arg(args.config)).to(torch.float64).init_weights(args.seed)
        model = model.to(device=dev, dtype=torch.float32)
    cfg = model.cfg
    window = cfg["window"] if args.window is None else args.window
    g = torch.Generator().manual_seed(args.seed)
    data = torch.randint(0, cfg["vocab_used"], (args.batch, args.seq + 1), generator=g).to(dev)
    tokens, targets = data[:, :-1], data[:, 1:]
    params = list(model.parameters())
    opt = torch.optim.AdamW(decay_groups(model, 0.1),
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8)

    # --autocast bf16: PyTorch's mixed precision (bf16 matrix products, fp32 weights), the
    # baseline beside swax's cpu-bf16 / cuda devices
    ac = args.autocast == "bf16"

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=ac):
            loss = lm_loss(model(tokens, None, window=window, chunk=args.chunk), targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()
    step()                                   # warm-up
    sync()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    sync()
    step_s = (time.perf_counter() - t0) / args.steps
    print(json.dumps(dict(tokens_per_s=round(args.batch * args.seq / step_s, 1), step_s=round(step_s, 4),
                          threads=args.threads, torch=torch.__version__, device=str(dev), autocast=args.autocast,
                          blas_threads=os.environ.get("OPENBLAS_NUM_THREADS", ""),
                          omp_wait_policy=os.environ.get("OMP_WAIT_POLICY", ""),
                          malloc_tuned=bool(args.malloc_tuned),
                          batch=args.batch, seq=args.seq, window=window, chunk=args.chunk,
                          params=sum(p.numel() for p in params), loss=round(float(loss.detach()), 4))))
    return 0

def cmd_selftest(args):
    # the checks live beside this file; make `import swax_ref` there reuse this module
    sys.modules.setdefault("swax_ref", sys.modules[__name__])
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import swax_ref_selftest
    return swax_ref_selftest.selftest()

# ----------------------------------------------------------------------------- main


def main(argv=None):
    ap = argparse.ArgumentParser(description="swax PyTorch twin: the correctness oracle of the C model.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--threads", type=int, default=0, help="torch/BLAS/OpenMP threads (0 = as is)")
    common.add_argument("--plain-malloc", action="store_true",
                        help="leave glibc malloc as is (default: keep freed memory, see tune_malloc)")
    common.add_argument("--blas-threads", type=int, default=0,
                        help="OpenBLAS threads (default: --threads); set before torch loads")

    p = sub.add_parser("logits", parents=[common], help="logits of one token sequence -> .npy (T, V) float32")
    p.add_argument("--model", required=True, help="checkpoint folder (config.json + model.safetensors)")
    p.add_argument("--tokens", required=True, help='"1,2,3" or "1 2 3" or @file')
    p.add_argument("--window", type=int, default=None, help="SWA window (default: config window)")
    p.add_argument("--chunk", type=int, default=64, help="mLSTM chunk size")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.add_argument("--form", choices=["chunkwise", "parallel", "recurrent"], default="chunkwise")
    p.add_argument("--doc-starts", default=None, help="positions where documents start, e.g. \"5,9\"")
    p.add_argument("--out", required=True, help="output .npy")
    p.set_defaults(fn=cmd_logits)

    p = sub.add_parser("check", parents=[common], help="compare C logits/loss/gradients with the twin (float64)")
    p.add_argument("--model", required=True)
    p.add_argument("--exchange", required=True, help="safetensors written by the C tests")
    p.add_argument("--tol", type=float, default=1e-4, help="max relative error ||a-b||/||b||")
    p.set_defaults(fn=cmd_check)

    p = sub.add_parser("truth", parents=[common], help="float64 logits/loss/gradients of an exchange batch")
    p.add_argument("--model", required=True)
    p.add_argument("--exchange", required=True)
    p.add_argument("--out", required=True, help="output .safetensors (float64)")
    p.set_defaults(fn=cmd_truth)

    p = sub.add_parser("adamw", parents=[common], help="compare C AdamW losses with torch.optim.AdamW (float64)")
    p.add_argument("--model", required=True)
    p.add_argument("--exchange", required=True)
    p.add_argument("--out", required=True, help="twin losses .npy (float64)")
    p.add_argument("--tol", type=float, default=1e-4)
    p.set_defaults(fn=cmd_adamw)

    p = sub.add_parser("bench", parents=[common], help="training-step throughput (float32, or --autocast bf16)")
    p.add_argument("--config", default="bench-cpu", help="preset (%s) or config JSON" % ", ".join(PRESETS))
    p.add_argument("--model", default=None, help="checkpoint folder instead of a fresh init")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--window", type=int, default=None, help="default: config window")
    p.add_argument("--chunk", type=int, default=64)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--autocast", choices=["off", "bf16"], default="off",
                   help="bf16: torch.autocast mixed precision (bf16 matrix products)")
    p.set_defaults(fn=cmd_bench)

    p = sub.add_parser("init", parents=[common], help="write a freshly initialised checkpoint")
    p.add_argument("--config", required=True, help="preset or config JSON")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="checkpoint folder")
    p.set_defaults(fn=cmd_init)

    p = sub.add_parser("selftest", parents=[common], help="float64 self-consistency checks")
    p.set_defaults(fn=cmd_selftest)

    args = ap.parse_args(argv)
    args.malloc_tuned = False if args.plain_malloc else tune_malloc()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    elif args.cmd == "bench":
        args.threads = torch.get_num_threads()
    try:
        return args.fn(args)
    except (FormatError, ValueError, OSError, json.JSONDecodeError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
