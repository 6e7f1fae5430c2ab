#!/usr/bin/env python3
"""The PyTorch kernel baselines of SPEC §8, timed on the card in hand, beside
which `swax bench kernels` is read (scripts/test_cuda.sh prints the ratios):

  SWA    flex_attention (torch.compile'd) with a sliding-window causal block
         mask, bf16, B8 H16 T4096 d64, window 128 and 2048, forward+backward;
  mLSTM  NX-AI's Triton TFLA kernel (mlstm_kernels, chunkwise xl_chunk), bf16,
         B8 NH4 T4096 DQK128 DV256, forward+backward.

mlstm_kernels is not vendored: put a snapshot of the public repository's
`mlstm_kernels/` package in .baseline/ (ignored by git) or on PYTHONPATH.
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


def mlstm(B=8, NH=4, T=4096, dk=128, dv=256):
    try:
        from mlstm_kernels.torch.chunkwise.triton_xl_chunk import mlstm_chunkwise__xl_chunk
    except Exception as e:  # noqa: BLE001 - report and go on
        print(json.dumps({"bench": "mlstm", "impl": "tfla", "error": repr(e)}), flush=True)
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


if __name__ == "__main__":
    print(json.dumps({"torch": torch.__version__, "device": torch.cuda.get_device_name()}), flush=True)
    swa()
    mlstm()
