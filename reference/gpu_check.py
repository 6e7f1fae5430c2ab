#!/usr/bin/env python3
"""gpu_check.py — checks of the twin that need the GPU box (PyTorch 2.x, CUDA, the
real `safetensors` package). Run there from the repo root:

    python3 reference/gpu_check.py

1. our safetensors writer/reader against the `safetensors` library, both directions
   (F32, F64, I32, U8, BF16, scalars, metadata);
2. the model on CUDA (float64) against the CPU: logits, loss and every gradient, with
   documents, padding and a chunk size that does not divide T.
Prints `N passed, N failed` last.
"""
import os
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import swax_ref as R  # noqa: E402

results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print("%s %s %s" % ("PASS" if ok else "FAIL", name, detail), flush=True)


def main():
    print("torch", torch.__version__, "numpy", np.__version__, "cuda", torch.cuda.is_available())
    try:
        import safetensors
        import safetensors.numpy as stn
        import safetensors.torch as stt
    except ImportError:
        safetensors = None
    if safetensors is None:
        check("safetensors package present", False)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            p = os.path.join(tmp, "a.safetensors")
            arrs = {"f32": np.random.randn(3, 5).astype(np.float32), "f64": np.random.randn(7),
                    "i32": np.arange(12, dtype=np.int32).reshape(3, 4), "u8": np.array([1, 0, 255], np.uint8),
                    "s": np.array(2.5, dtype=np.float32)}
            R.write_safetensors(p, arrs, {"window": "128", "chunk": "64"})
            back = stn.load_file(p)
            with safetensors.safe_open(p, framework="np") as f:
                meta = f.metadata()
            check("library reads our file", all(np.array_equal(back[k], arrs[k]) and back[k].dtype == arrs[k].dtype
                                                  and back[k].shape == arrs[k].shape for k in arrs)
                  and meta == {"window": "128", "chunk": "64"})
            t = {"bf": torch.randn(4, 3).to(torch.bfloat16), "f32": torch.randn(2, 2), "i64": torch.arange(5)}
            stt.save_file(t, p, metadata={"k": "v"})
            ours, meta = R.read_safetensors(p)
            check("we read the library's file (BF16 -> F32)",
                  np.array_equal(ours["bf"], t["bf"].float().numpy()) and np.array_equal(ours["f32"], t["f32"].numpy())
                  and np.array_equal(ours["i64"], t["i64"].numpy()) and meta == {"k": "v"})
            cfg = R.make_config(dict(vocab_size=40, vocab_used=37, d_model=32, n_blocks=2, attn_heads=2,
                                     head_dim=16, mlstm_heads=2, ffn_dim=64, window=8))
            m = R.SwaxModel(cfg).double().init_weights(3)
            R.save_checkpoint(m, tmp)
            lib = stt.load_file(os.path.join(tmp, "model.safetensors"))
            check("library reads our checkpoint", sorted(lib) == sorted(n for n, _ in R.tensor_names(cfg))
                  and all(torch.equal(lib[n], m.state_dict()[n].float()) for n in lib))

    if not torch.cuda.is_available():
        check("cuda available", False)
    else:
        torch.manual_seed(0)
        cfg = R.make_config(dict(vocab_size=50, vocab_used=47, d_model=32, n_blocks=4, attn_heads=2, head_dim=16,
                                 mlstm_heads=2, ffn_dim=64, window=8, logit_softcap=10.0))
        cpu = R.SwaxModel(cfg).double().init_weights(5)
        with torch.no_grad():
            for blk in cpu.blocks:
                if blk.kind == "M":
                    blk.mlstm.wi.weight.normal_(0, 0.5)
                    blk.mlstm.wf.weight.normal_(0, 0.5)
                    blk.mlstm.wi.bias.normal_(0, 2.0)
        gpu = R.SwaxModel(cfg).double().cuda()
        gpu.load_state_dict(cpu.state_dict())
        toks = torch.randint(0, 47, (3, 70))
        tg = torch.randint(0, 47, (3, 70))
        tg[:, :3] = -1
        ds = torch.zeros(3, 70, dtype=torch.bool)
        ds[0, [13, 40]] = True
        ds[2, 64] = True
        lc, lossc, gc = R.run_model(cpu, toks, tg, ds, 8, 16, "chunkwise")
        lg, lossg, gg = R.run_model(gpu, toks.cuda(), tg.cuda(), ds.cuda(), 8, 16, "chunkwise")
        fin = torch.isfinite(lc)
        worst = max([R.rel_err(lg.cpu()[fin], lc[fin])[1], R.rel_err(lossg.cpu(), lossc)[1]]
                    + [R.rel_err(gg[n].cpu(), gc[n])[1] for n in gc])
        check("cuda float64 == cpu float64 (logits, loss, all gradients)",
              worst < 1e-10 and torch.equal(torch.isfinite(lg.cpu()), fin), "worst %.2e" % worst)
        lp, _, _ = R.run_model(gpu, toks.cuda(), tg.cuda(), ds.cuda(), 8, 16, "parallel")
        check("cuda chunkwise == parallel", R.rel_err(lp.cpu()[fin], lg.cpu()[fin])[1] < 1e-12)
    npass = sum(results)
    print("%d passed, %d failed" % (npass, len(results) - npass))
    return 0 if npass == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
