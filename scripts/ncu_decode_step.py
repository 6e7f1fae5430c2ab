#!/usr/bin/env python3
"""ncu_decode_step.py — one decode step's kernels from an Nsight Compute raw CSV
(gpu_session.sh's ncu section: --page raw --metrics gpu__time_duration.sum over
`swax bench infer`). A step ends with k_argmax; the last complete step (between
the last two argmax launches) is summed per kernel name. Prints one line per
kernel and a total, each prefixed "ncu decode:" for summary.txt.
  python3 scripts/ncu_decode_step.py FILE.csv"""
import csv
import sys


def main(path):
    rows = [r for r in csv.reader(open(path, newline="", errors="replace"))]
    head = next((i for i, r in enumerate(rows) if "Kernel Name" in r and "gpu__time_duration.sum" in r), None)
    if head is None:
        print("ncu decode: no kernel rows in", path)
        return 1
    h = rows[head]
    ki, ti = h.index("Kernel Name"), h.index("gpu__time_duration.sum")
    bi = h.index("dram__bytes_read.sum") if "dram__bytes_read.sum" in h else None
    body = rows[head + 1:]
    scale, bscale = 1e-3, 1.0  # to microseconds, to bytes
    if body and not body[0][ti].replace(".", "", 1).replace(",", "").isdigit():  # the units row
        unit = body[0][ti].strip().lower()
        scale = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3}.get(unit, 1e-3)
        if bi is not None:
            bscale = {"byte": 1, "kbyte": 1e3, "mbyte": 1e6, "gbyte": 1e9}.get(body[0][bi].strip().lower(), 1)
        body = body[1:]
    ks = []
    for r in body:
        if len(r) <= max(ki, ti, bi or 0):
            continue
        try:
            name = r[ki].split("(")[0].split("<")[0].strip()
            name = name[5:] if name.startswith("void ") else name
            nbytes = float(r[bi].replace(",", "")) * bscale if bi is not None else 0.0
            ks.append((name, float(r[ti].replace(",", "")) * scale, nbytes))
        except ValueError:
            continue
    ends = [i for i, k in enumerate(ks) if k[0].endswith("k_argmax")]
    if len(ends) < 2:
        print(f"ncu decode: {len(ks)} kernels, {len(ends)} argmax: no complete step")
        return 1
    step = ks[ends[-2] + 1:ends[-1] + 1]
    per = {}  # products told apart by the megabytes they read
    for n, t, b in step:
        key = f"{n} {b / 1e6:.0f} MB" if n.startswith("k_gemv") else n
        c, s, bb = per.get(key, (0, 0.0, 0.0))
        per[key] = (c + 1, s + t, bb + b)
    tot = sum(k[1] for k in step)
    for n, (c, s, b) in sorted(per.items(), key=lambda kv: -kv[1][1]):
        print(f"ncu decode: {n:<28s} {c:4d} launches {s:9.1f} us {100 * s / tot:5.1f}%  {s / c:7.2f} us each"
              + (f"  {b / (s * 1e-6) / 1e9:7.0f} GB/s read" if b > 0 else ""))
    rd = sum(k[2] for k in step)
    if rd > 0:
        print(f"ncu decode: {rd / 1e9:.3f} GB read from DRAM in the step's kernels, {rd / (tot * 1e-6) / 1e9:.0f} GB/s "
              "over their summed durations")
    print(f"ncu decode: step of {len(step)} kernels, their durations sum to {tot:.1f} us "
          f"(steps seen: {len(ends)}; the graph's step time is in the infer lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
