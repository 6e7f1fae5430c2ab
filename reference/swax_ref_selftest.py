"""swax_ref_selftest.py — float64 self-consistency checks of the PyTorch twin.

Run through the twin's CLI: `/usr/bin/python3 reference/swax_ref.py selftest`.
Prints one PASS/FAIL line per check and `N passed, N failed` last.
"""
import json
import math
import os
import struct
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

import swax_ref as R

from swax_ref import (FormatError, SWA, SwaxModel, apply_rope, doc_starts, lm_loss, load_checkpoint,
                      main, make_config, mlstm_cell, mlstm_chunkwise, mlstm_parallel,
                      mlstm_recurrent, read_safetensors, rope_tables, run_model, save_checkpoint,
                      swa_mask, tensor_names, write_safetensors)


def selftest():
    torch.manual_seed(1234)
    dt = torch.float64
    results = []

    def check(name, ok, detail=""):
        results.append(bool(ok))
        print("%s %s %s" % ("PASS" if ok else "FAIL", name, detail))

    def rel(a, b):
        """max |a-b| / max |b| over finite entries; -inf (padded logits) must match."""
        fin = torch.isfinite(b)
        if not torch.equal(fin, torch.isfinite(a)) or not torch.equal(a[~fin], b[~fin]):
            return float("inf")
        return float((a[fin] - b[fin]).abs().max() / b[fin].abs().max().clamp(min=1e-300))

    def cell_inputs(B, NH, T, DQK, DV, strong=True):
        q, k = torch.randn(B, NH, T, DQK, dtype=dt), torch.randn(B, NH, T, DQK, dtype=dt)
        v = torch.randn(B, NH, T, DV, dtype=dt)
        if strong:   # gates over the whole soft-capped range: both branches of every max occur
            ig = (torch.rand(B, NH, T, dtype=dt) * 2 - 1) * 15
            fg = (torch.rand(B, NH, T, dtype=dt) * 2 - 1) * 8
        else:        # the initialisation regime: b_i = -10, b_f in [3, 6]
            ig = -10 + 0.5 * torch.randn(B, NH, T, dtype=dt)
            fg = 4.5 + torch.randn(B, NH, T, dtype=dt)
        return q, k, v, ig, fg

    # 1. the three mLSTM forms agree (values and gradients)
    for strong in (True, False):
        B, NH, T, DQK, DV = 2, 3, 37, 4, 5
        q, k, v, ig, fg = cell_inputs(B, NH, T, DQK, DV, strong)
        ref = mlstm_parallel(q, k, v, ig, fg)
        tag = "strong" if strong else "init-like"
        check("mlstm recurrent == parallel (%s gates)" % tag,
              rel(mlstm_recurrent(q, k, v, ig, fg), ref) < 1e-12)
        worst = max(rel(mlstm_chunkwise(q, k, v, ig, fg, chunk=L), ref) for L in (1, 2, 5, 8, 16, 37, 64))
        check("mlstm chunkwise == parallel, L in 1,2,5,8,16,37,64, T=37 (%s gates)" % tag,
              worst < 1e-12, "worst %.2e" % worst)
        if strong:
            # the stabiliser matters: both branches of max(|den|, e^-m) are taken
            lf = F.logsigmoid(fg)
            Fc = torch.cumsum(lf, -1)
            logD = (Fc[..., :, None] - Fc[..., None, :] + ig[..., None, :]).masked_fill(
                ~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
            m = torch.maximum(Fc, logD.amax(-1))
            S = (q @ k.transpose(-1, -2)) * DQK ** -0.5 * torch.exp(logD - m[..., None])
            frac = float((S.sum(-1).abs() < torch.exp(-m)).double().mean())
            check("strong gates exercise both normaliser branches", 0.05 < frac < 0.95,
                  "exp(-m) branch at %.0f%% of tokens, m in [%.1f, %.1f]"
                  % (100 * frac, float(m.min()), float(m.max())))
    q, k, v, ig, fg = [x.requires_grad_() for x in cell_inputs(2, 2, 23, 3, 4)]
    w = torch.randn(2, 2, 23, 4, dtype=dt)
    gref = torch.autograd.grad((mlstm_parallel(q, k, v, ig, fg) * w).sum(), (q, k, v, ig, fg))
    for form, fn in (("recurrent", lambda: mlstm_recurrent(q, k, v, ig, fg)),
                     ("chunkwise L=4", lambda: mlstm_chunkwise(q, k, v, ig, fg, chunk=4)),
                     ("chunkwise L=1", lambda: mlstm_chunkwise(q, k, v, ig, fg, chunk=1))):
        g = torch.autograd.grad((fn() * w).sum(), (q, k, v, ig, fg))
        worst = max(rel(a, b) for a, b in zip(g, gref))
        check("mlstm gradients %s == parallel" % form, worst < 1e-10, "worst %.2e" % worst)

    # 2. document resets == each document alone
    B, NH, T, DQK, DV = 2, 2, 41, 3, 4
    q, k, v, ig, fg = cell_inputs(B, NH, T, DQK, DV)
    ds = torch.zeros(B, T, dtype=torch.bool)
    ds[0, [7, 8, 16, 30]] = True          # a length-1 document, a start on a chunk boundary (L=8)
    ds[1, [5, 33]] = True
    for form, L in (("parallel", 0), ("recurrent", 0), ("chunkwise", 1), ("chunkwise", 8),
                    ("chunkwise", 16), ("chunkwise", 64)):
        h = mlstm_cell(q, k, v, ig, fg, ds, 1e-6, form, L)
        worst = 0.0
        for b in range(B):
            st = [0] + [int(i) for i in torch.nonzero(ds[b])[:, 0] if i > 0] + [T]
            for s0, s1 in zip(st[:-1], st[1:]):
                sl = slice(s0, s1)
                alone = mlstm_parallel(q[b:b + 1, :, sl], k[b:b + 1, :, sl], v[b:b + 1, :, sl],
                                       ig[b:b + 1, :, sl], fg[b:b + 1, :, sl])
                worst = max(worst, rel(h[b:b + 1, :, sl], alone))
        check("mlstm %s%s with doc starts == documents alone" % (form, " L=%d" % L if L else ""),
              worst < 1e-12, "worst %.2e" % worst)

    # 3. SWA against a naive loop, windows 1, < T, >= T, with and without documents
    cfg = make_config(dict(vocab_size=16, d_model=16, n_blocks=1, pattern="A", attn_heads=2, head_dim=8))
    attn = SWA(cfg).to(dt)
    T = 19
    x = torch.randn(2, T, 16, dtype=dt)
    cos, sin = rope_tables(T, 8, 10000.0, dt, "cpu")
    ds = torch.zeros(2, T, dtype=torch.bool)
    ds[1, [6, 13]] = True

    def naive(xb, window, dsb):
        doc = torch.cumsum(dsb.long(), 0)
        out = torch.zeros(T, 16, dtype=dt)
        for hh in range(2):
            cols = slice(8 * hh, 8 * hh + 8)
            qh = apply_rope(attn.wq(xb)[:, cols], cos, sin)
            kh = apply_rope(attn.wk(xb)[:, cols], cos, sin)
            vh = attn.wv(xb)[:, cols]
            for i in range(T):
                js = [j for j in range(max(0, i - window + 1), i + 1) if doc[j] == doc[i]]
                p = torch.softmax(torch.stack([qh[i] @ kh[j] / math.sqrt(8) for j in js]), 0)
                out[i, cols] = sum(p[n] * vh[j] for n, j in enumerate(js))
        return attn.wo(out)
    with torch.no_grad():
        for window in (1, 4, T, 3 * T):
            for use_docs in (False, True):
                dsx = ds if use_docs else None
                got = attn(x, cos, sin, swa_mask(doc_starts(dsx, 2, T, "cpu"), window))
                want = torch.stack([naive(x[b], window, doc_starts(dsx, 2, T, "cpu")[b, 0])
                                    for b in range(2)])
                check("swa window %d%s == naive loop" % (window, " +docs" if use_docs else ""),
                      rel(got, want) < 1e-12)
        got = attn(x, cos, sin, swa_mask(doc_starts(None, 2, T, "cpu"), 1))
        check("swa window 1 == W_o W_v x", rel(got, attn.wo(attn.wv(x))) < 1e-12)

    # 4. gradcheck on a tiny mLSTM cell (all forms, with a document start)
    q, k, v, ig, fg = [x.requires_grad_() for x in cell_inputs(1, 2, 6, 2, 2)]
    dsg = torch.zeros(1, 6, dtype=torch.bool)
    dsg[0, 4] = True
    for form, L in (("parallel", 0), ("chunkwise", 4), ("recurrent", 0)):
        ok = torch.autograd.gradcheck(lambda *a: mlstm_cell(*a, dsg, 1e-6, form, L),
                                      (q, k, v, ig, fg), eps=1e-6, atol=1e-6, rtol=1e-5,
                                      raise_exception=False)
        check("gradcheck mlstm %s" % form, ok)

    # 5. the whole model: names, forms, documents, padding, loss, gradient
    cfg = make_config(dict(vocab_size=23, vocab_used=20, d_model=16, n_blocks=3, pattern="AM",
                           attn_heads=2, head_dim=8, mlstm_heads=2, ffn_dim=24, logit_softcap=5.0,
                           gate_softcap=15.0, window=4))
    model = SwaxModel(cfg).to(dt).init_weights(7)
    with torch.no_grad():
        # livelier gates than the init, so the test sees real dynamics; not as strong as
        # in the cell tests above: saturated gates make the loss too stiff for finite
        # differences and float32
        for blk in model.blocks:
            if blk.kind == "M":
                for lin in (blk.mlstm.wi, blk.mlstm.wf, blk.mlstm.wog):
                    lin.weight.normal_(0, 0.5)
                blk.mlstm.wi.bias.normal_(0, 2.0)
    names = [n for n, _ in tensor_names(cfg)]
    check("state_dict names == docs/checkpoint.md", sorted(model.state_dict()) == sorted(names)
          and all(tuple(model.state_dict()[n].shape) == s for n, s in tensor_names(cfg)))
    tied = SwaxModel(dict(cfg, tie_embeddings=True))
    check("tie_embeddings drops lm_head.weight", "lm_head.weight" not in tied.state_dict()
          and sorted(tied.state_dict()) == sorted(n for n, _ in tensor_names(tied.cfg)))
    T = 29
    toks = torch.randint(0, 20, (2, T))
    tg = torch.randint(0, 20, (2, T))
    tg[0, 3] = -1
    tg[1, 10:14] = -100
    ds = torch.zeros(2, T, dtype=torch.bool)
    ds[0, [9, 10, 24]] = True
    ds[1, 16] = True
    with torch.no_grad():
        ref = model(toks, ds, window=4, form="parallel")
        worst = max(rel(model(toks, ds, window=4, chunk=L), ref) for L in (1, 3, 8, 64))
        check("model chunkwise(L=1,3,8,64) == parallel", worst < 1e-12, "worst %.2e" % worst)
        check("model recurrent == parallel", rel(model(toks, ds, window=4, form="recurrent"), ref) < 1e-12)
        check("padded ids (>= vocab_used) are -inf", bool(torch.isinf(ref[..., 20:]).all())
              and bool(torch.isfinite(ref[..., :20]).all()))
        worst = 0.0
        for b in range(2):
            st = [0] + [int(i) for i in torch.nonzero(ds[b])[:, 0] if i > 0] + [T]
            for s0, s1 in zip(st[:-1], st[1:]):
                worst = max(worst, rel(ref[b, s0:s1], model(toks[b:b + 1, s0:s1], window=4)[0]))
        check("model with doc starts == documents alone", worst < 1e-12, "worst %.2e" % worst)
        manual = torch.stack([-torch.log_softmax(ref[b, t], -1)[tg[b, t]] for b in range(2)
                              for t in range(T) if tg[b, t] >= 0]).mean()
        check("loss == mean CE over targets >= 0", abs(float(lm_loss(ref, tg) - manual)) < 1e-12)
    loss = lm_loss(model(toks, ds, window=4, chunk=8), tg)
    params = list(model.parameters())
    grads = torch.autograd.grad(loss, params)
    check("gradients finite", all(bool(torch.isfinite(g).all()) for g in grads))
    def fd(d, h):               # central difference of the loss along direction d
        with torch.no_grad():
            for p, dp in zip(params, d):
                p.add_(h * dp)
            lp = lm_loss(model(toks, ds, window=4, chunk=8), tg)
            for p, dp in zip(params, d):
                p.sub_(2 * h * dp)
            lm = lm_loss(model(toks, ds, window=4, chunk=8), tg)
            for p, dp in zip(params, d):
                p.add_(h * dp)
        return float(lp - lm) / (2 * h)
    worst = 0.0
    for _ in range(3):
        # the strong gates make the loss stiff: Richardson-extrapolate two step sizes
        d = [torch.randn_like(p) for p in params]
        est = (4 * fd(d, 1e-6) - fd(d, 2e-6)) / 3
        an = float(sum((g * dp).sum() for g, dp in zip(grads, d)))
        worst = max(worst, abs(est - an) / max(abs(an), 1e-12))
    check("model gradient == finite differences (3 directions)", worst < 1e-7, "worst %.2e" % worst)
    with torch.no_grad():
        m32 = SwaxModel(cfg).to(torch.float32)
        m32.load_state_dict({k: v.float() for k, v in model.state_dict().items()})
        l32 = m32(toks, ds, window=4, chunk=8)
        fin = torch.isfinite(ref)
        check("float32 model ~ float64 model", rel(l32.double()[fin], ref[fin]) < 1e-4)

    # 6. safetensors: round trip through a checkpoint folder, BF16, validation
    with tempfile.TemporaryDirectory() as tmp:
        save_checkpoint(model, tmp)
        back = load_checkpoint(tmp)
        check("checkpoint round trip", all(torch.equal(back.state_dict()[n], model.state_dict()[n].float().double())
                                           for n in names))
        with open(os.path.join(tmp, "model.safetensors"), "rb") as f:
            hdr = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
        check("checkpoint tensors are written in documented order",
              [k for k in hdr if k != "__metadata__"] == names)
        p = os.path.join(tmp, "x.safetensors")
        vals = np.array([1.0, -2.5, 3.140625], dtype=np.float32)
        bf = (vals.view(np.uint32) >> 16).astype(np.uint16)
        write_safetensors(p, [("a", np.arange(6, dtype=np.int32).reshape(2, 3)),
                              ("b", np.array([1, 0, 1], dtype=np.uint8)),
                              ("s", np.float64(2.0).reshape(()))], {"window": "128"})
        t, meta = read_safetensors(p)
        check("safetensors write/read", meta == {"window": "128"} and t["a"].dtype == np.int32
              and t["a"].tolist() == [[0, 1, 2], [3, 4, 5]] and t["b"].tolist() == [1, 0, 1]
              and t["s"].shape == () and float(t["s"]) == 2.0)
        hj = json.dumps({"x": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]}}).encode()
        with open(p, "wb") as f:
            f.write(struct.pack("<Q", len(hj)) + hj + bf.tobytes())
        t, _ = read_safetensors(p)
        check("safetensors BF16 -> float32", t["x"].dtype == np.float32 and t["x"].tolist() == vals.tolist())
        bad = [struct.pack("<Q", 10**9) + hj,
               struct.pack("<Q", len(hj)) + hj + bf.tobytes()[:5],
               struct.pack("<Q", len(hj)) + hj + bf.tobytes() + b"\0\0",
               struct.pack("<Q", 5) + b"{\"x\":",
               struct.pack("<Q", len(hj)) + hj.replace(b'"BF16"', b'"F32"') + bf.tobytes()]
        rejected = 0
        for blob in bad:
            with open(p, "wb") as f:
                f.write(blob)
            try:
                read_safetensors(p)
            except FormatError:
                rejected += 1
        check("safetensors rejects corrupt files", rejected == len(bad), "%d/%d" % (rejected, len(bad)))

    # 7. the CLI round trip: `check` and `adamw` on exchange files like the C tests write
    import contextlib
    import io

    def cli(argv):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            rc = main(argv)
        return rc, buf.getvalue()
    with tempfile.TemporaryDirectory() as tmp:
        ck = os.path.join(tmp, "ckpt")
        save_checkpoint(model, ck)
        m64 = load_checkpoint(ck)                 # the float32-rounded weights the CLI will see
        lg, loss, grads = run_model(m64, toks, tg, ds, 4, 8, "chunkwise")
        ex = [("tokens", toks.numpy().astype(np.int32)), ("targets", tg.numpy().astype(np.int32)),
              ("doc_start", ds.numpy().astype(np.uint8)), ("logits", lg.numpy().astype(np.float32)),
              ("loss", loss.reshape(1).numpy().astype(np.float32))]
        ex += [("grad." + n, grads[n].numpy().astype(np.float32)) for n, _ in tensor_names(cfg)]
        exf = os.path.join(tmp, "ex.safetensors")
        write_safetensors(exf, ex, {"window": "4", "chunk": "8"})
        rc, out = cli(["check", "--model", ck, "--exchange", exf])
        check("cli check accepts float32-rounded twin results", rc == 0 and "twin check: OK" in out)
        exd = dict(ex)
        g = exd["grad.blocks.1.mlstm.wf.weight"].copy()
        g.flat[0] += 1e-2 * np.abs(g).max()
        write_safetensors(exf, dict(exd, **{"grad.blocks.1.mlstm.wf.weight": g}), {"window": "4", "chunk": "8"})
        rc, out = cli(["check", "--model", ck, "--exchange", exf])
        check("cli check rejects a wrong gradient", rc == 1 and "twin check: FAILED" in out)
        bad_lg = exd["logits"].copy()
        bad_lg[0, 0, 21] = 0.0                    # a padded id that is not -inf
        write_safetensors(exf, dict(exd, logits=bad_lg), {"window": "4", "chunk": "8"})
        rc, out = cli(["check", "--model", ck, "--exchange", exf])
        check("cli check rejects -inf mismatches", rc == 1)

        # AdamW written out by hand: the update rule the C side implements
        hp = dict(lr=1e-2, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1, steps=6, clip=0.5)
        mm = load_checkpoint(ck)
        ps = list(mm.parameters())
        mom, vel, losses, clipped = [torch.zeros_like(p) for p in ps], [torch.zeros_like(p) for p in ps], [], 0
        for step in range(1, hp["steps"] + 1):
            lo = lm_loss(mm(toks, ds, window=4, chunk=8), tg)
            gs = torch.autograd.grad(lo, ps)
            losses.append(float(lo.detach()))
            norm = torch.sqrt(sum((g * g).sum() for g in gs))
            coef = min(1.0, hp["clip"] / (float(norm) + 1e-6))        # torch's clip_grad_norm_
            clipped += coef < 1.0
            with torch.no_grad():
                for p, g, mo, ve in zip(ps, gs, mom, vel):
                    g = g * coef
                    wd = hp["weight_decay"] if p.dim() >= 2 else 0.0
                    p.mul_(1 - hp["lr"] * wd)                           # decoupled decay first
                    mo.mul_(hp["beta1"]).add_((1 - hp["beta1"]) * g)
                    ve.mul_(hp["beta2"]).add_((1 - hp["beta2"]) * g * g)
                    denom = ve.sqrt() / math.sqrt(1 - hp["beta2"] ** step) + hp["eps"]
                    p.sub_(hp["lr"] / (1 - hp["beta1"] ** step) * mo / denom)
        meta = dict({k: repr(v) for k, v in hp.items()}, steps="6", window="4", chunk="8")
        exa = ex[:3] + [("losses", np.array(losses, dtype=np.float32))]
        write_safetensors(exf, exa, meta)
        outf = os.path.join(tmp, "losses.npy")
        rc, out = cli(["adamw", "--model", ck, "--exchange", exf, "--out", outf])
        twin = np.load(outf)
        check("cli adamw == AdamW by hand (clip, decay on 2-D only)", rc == 0 and clipped > 0
              and np.abs(twin - np.array(losses)).max() < 1e-12 * max(1.0, abs(losses[0])),
              "clipped %d of 6 steps, loss %.4f -> %.4f" % (clipped, losses[0], losses[-1]))
        exa[-1] = ("losses", np.array(losses, dtype=np.float32) * np.float32(1.001))
        write_safetensors(exf, exa, meta)
        rc, out = cli(["adamw", "--model", ck, "--exchange", exf, "--out", outf])
        check("cli adamw rejects wrong losses", rc == 1 and "twin adamw: FAILED" in out)

    # Gated DeltaNet (pattern D): chunkwise (UT transform) == recurrence, documents == separate runs
    B, NH, T, DK, DV = 2, 3, 41, 6, 5
    q = torch.nn.functional.normalize(torch.randn(B, NH, T, DK, dtype=dt), dim=-1) * DK ** -0.5
    k = torch.nn.functional.normalize(torch.randn(B, NH, T, DK, dtype=dt), dim=-1)
    v, beta = torch.randn(B, NH, T, DV, dtype=dt), torch.rand(B, NH, T, dtype=dt)
    g = -2 * torch.rand(B, NH, T, dtype=dt)
    ds = torch.rand(B, T) < 0.1
    worst = 0.0
    for d in (None, ds):
        ref = R.gdn_recurrent(q, k, v, beta, g, d)
        for L in (1, 5, 16, 64):
            worst = max(worst, rel(R.gdn_chunkwise(q, k, v, beta, g, d, L), ref))
    check("gdn chunkwise == recurrent (float64, L 1/5/16/64, documents)", worst < 1e-12, "%.2e" % worst)
    ds1 = torch.zeros(1, T, dtype=torch.bool)
    ds1[0, 17] = True
    whole = R.gdn_chunkwise(q[:1], k[:1], v[:1], beta[:1], g[:1], ds1, 8)
    parts = torch.cat([R.gdn_chunkwise(q[:1, :, a:b], k[:1, :, a:b], v[:1, :, a:b], beta[:1, :, a:b],
                                       g[:1, :, a:b], None, 8) for a, b in ((0, 17), (17, T))], dim=2)
    check("gdn document start == separate runs", rel(whole, parts) < 1e-13, "%.2e" % rel(whole, parts))
    cfg = dict(vocab_size=19, d_model=16, n_blocks=2, pattern="DA", attn_heads=2, head_dim=8, mlstm_heads=2,
               gdn_heads=4, ffn_dim=24, window=5)
    mdl = R.SwaxModel(cfg).to(dt).init_weights(3)
    toks = torch.randint(0, 19, (2, 23))
    a, b = mdl(toks, ds[:, :23], chunk=4), mdl(toks, ds[:, :23], form="recurrent")
    check("gdn model chunkwise == recurrent logits", rel(a, b) < 1e-12, "%.2e" % rel(a, b))

    npass = sum(results)
    print("%d passed, %d failed" % (npass, len(results) - npass))
    return 0 if npass == len(results) else 1
