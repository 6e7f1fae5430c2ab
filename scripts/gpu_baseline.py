#!/usr/bin/env python3
"""The PyTorch kernel baselines of SPEC §8, timed on the card in hand, beside
which `swax bench kernels` is read (scripts/test_cuda.sh prints the ratios):

  SWA    flex_attention (torch.compile'd) with a sliding-window causal block
         mask, bf16, B8 H16 T4096 d64, window 128 and 2048, forward+backward;
  mLSTM  NX-AI's Triton TFLA kernel (mlstm_kernels, chunkwise xl_chunk), bf16,
         B8 NH4 T4096 DQK128 DV256, forward+backward;
  GDN    FLA's Triton chunk_gated_delta_rule (q/k L2-normalised in the kernel),
         bf16, the same shape, forward+backward (`swax bench kernels`' gdn line
         also does the short convolutions, gates and gated RMSNorm: more work).

Neither is vendored: put snapshots of the public repositories' packages
(`mlstm_kernels/`, and `fla/` of fla-org/flash-linear-attention) in .baseline/
(ignored by git) or on PYTHONPATH. `--only swa,mlstm,gdn` picks figures.
Prints one JSON line per figure; times are medians (triton.testing.do_bench)."""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".baseline"))


def bench(fn):
    from triton.testing import do_bench

    return do_bench(fn, warmup=50, rep=300, return_mode="median")


def swa(B=8, H=16, T=4096, d=64):
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    flex = torch.compile(flex_attention, dynamic=False)
    for w in (128, 2048):
        def mask(b, h, q, k, w=w):
            return (q >= k) & (q - k < w)

        bm = create_block_mask(mask, B=None, H=None, Q_LEN=T, KV_LEN=T)
        q, k, v = (torch.randn(B, H, T, d, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
        do = torch.randn(B, H, T, d, device="cuda", dtype=torch.bfloat16)

        def fwd():
            return flex(q, k, v, block_mask=bm)

        def fwdbwd():
            o = flex(q, k, v, block_mask=bm)
            o.backward(do)

        tf, tfb = bench(fwd), bench(fwdbwd)
        print(json.dumps({"bench": "swa", "impl": "flex_attention", "B": B, "H": H, "T": T, "dh": d, "window": w,
                          "fwd_ms": round(tf, 3), "fwdbwd_ms": round(tfb, 3)}), flush=True)


def imported(bench, impl, load):
    """load() (an import), or None after a JSON line saying why it failed."""
    try:
        return load()
    except Exception as e:  # noqa: BLE001 - report and go on
        print(json.dumps({"bench": bench, "impl": impl, "error": repr(e)}), flush=True)
        return None


def mlstm(B=8, NH=4, T=4096, dk=128, dv=256):
    def load():
        from mlstm_kernels.torch.chunkwise.triton_xl_chunk import mlstm_chunkwise__xl_chunk

        return mlstm_chunkwise__xl_chunk

    mlstm_chunkwise__xl_chunk = imported("mlstm", "tfla", load)
    if mlstm_chunkwise__xl_chunk is None:
        return
    # bf16 q, k, v; fp32 gate pre-activations (i: log input gate; f: raw forget
    # pre-activation, TFLA applies logsigmoid itself); autocast off so nothing is cast
    q = torch.randn(B, NH, T, dk, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    k = torch.randn(B, NH, T, dk, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    v = torch.randn(B, NH, T, dv, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    i = (torch.rand(B, NH, T, device="cuda") * 6 - 4).requires_grad_(True)
    f = (3.0 + torch.randn(B, NH, T, device="cuda")).requires_grad_(True)
    dh = torch.randn(B, NH, T, dv, device="cuda", dtype=torch.bfloat16)

    def call():
        with torch.autocast("cuda", enabled=False):
            return mlstm_chunkwise__xl_chunk(q, k, v, i, f, eps=1e-6, chunk_size=128,
                                             autocast_kernel_dtype=torch.bfloat16)

    def fwd():
        return call()

    def fwdbwd():
        call().backward(dh)

    tf, tfb = bench(fwd), bench(fwdbwd)
    print(json.dumps({"bench": "mlstm", "impl": "tfla", "B": B, "NH": NH, "T": T, "dk": dk, "dv": dv, "chunk": 128,
                      "fwd_ms": round(tf, 3), "fwdbwd_ms": round(tfb, 3)}), flush=True)


def gdn(B=8, H=4, T=4096, dk=128, dv=256):
    import importlib.util
    import types

    if importlib.util.find_spec("einops") is None:  # only FLA's reference code (unused here) needs it
        stub = types.ModuleType("einops")

        def missing(*a, **k):
            raise RuntimeError("einops is not installed")

        stub.rearrange = stub.repeat = stub.reduce = stub.einsum = missing
        sys.modules["einops"] = stub
    def load():
        from fla.ops.gated_delta_rule import chunk_gated_delta_rule

        return chunk_gated_delta_rule

    chunk_gated_delta_rule = imported("gdn", "fla", load)
    if chunk_gated_delta_rule is None:
        return
    q = torch.randn(B, T, H, dk, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    k = torch.randn(B, T, H, dk, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    v = torch.randn(B, T, H, dv, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    # log decay (negative, fp32) and beta in (0, 1), as the layer feeds them
    g = torch.nn.functional.logsigmoid(torch.randn(B, T, H, device="cuda") + 4).requires_grad_(True)
    beta = torch.rand(B, T, H, device="cuda", dtype=torch.bfloat16).requires_grad_(True)
    do = torch.randn(B, T, H, dv, device="cuda", dtype=torch.bfloat16)

    def call():
        return chunk_gated_delta_rule(q, k, v, g, beta, use_qk_l2norm_in_kernel=True)[0]

    def fwd():
        return call()

    def fwdbwd():
        call().backward(do)

    bypassed = False
    try:
        tf = bench(fwd)
        try:
            tfb = bench(fwdbwd)
        except RuntimeError as e:
            # FLA refuses its gated backward on Hopper with Triton 3.4-3.7.0 (its issue #640: wrong
            # results from a Triton miscompile). For a time only, step past the guard; the figure is
            # marked, and its numbers are not used for anything but the clock.
            if "#640" not in str(e):
                raise
            import fla.ops.common.chunk_o as chunk_o

            chunk_o.IS_NVIDIA_HOPPER, bypassed = False, True
            tfb = bench(fwdbwd)
    except Exception as e:  # noqa: BLE001
        print(json.dumps({"bench": "gdn", "impl": "fla", "error": repr(e)[:400]}), flush=True)
        return
    import triton

    print(json.dumps({"bench": "gdn", "impl": "fla", "B": B, "NH": H, "T": T, "dk": dk, "dv": dv, "chunk": 64,
                      "fwd_ms": round(tf, 3), "fwdbwd_ms": round(tfb, 3), "triton": triton.__version__,
                      "hopper_guard_bypassed": bypassed}), flush=True)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="PyTorch kernel baselines (JSON lines)")
    ap.add_argument("--only", default="swa,mlstm,gdn", help="comma list of swa, mlstm, gdn")
    only = ap.parse_args().only.split(",")
    print(json.dumps({"torch": torch.__version__, "device": torch.cuda.get_device_name()}), flush=True)
    for name, fn in (("swa", swa), ("mlstm", mlstm), ("gdn", gdn)):
        if name in only:
            fn()
