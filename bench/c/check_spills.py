"""Checks that every GEMM and conv micro-kernel keeps its accumulators in registers.

    python bench/c/check_spills.py [nnc/_core*.so]

Disassembles the extension, finds each gemm_ukr_* function's k loop (the
smallest backward-branch loop holding broadcasts and FMAs) and counts stack
references (%rsp/%rbp) inside it; any is a spill.  gemm_small_part is
listed too: the compiler may inline gemm_ukr_1x4 there.  The conv
micro-kernels (conv_ukr*, conv_dw_ukr*, conv_wgrad_ukr*, conv_slide*) must not zero a stack image of
their accumulators (`rep stos`, what GCC does when it cannot unroll a tile's
pixel loops before scalar replacement: a memset and a reload per call).
Exit status 1 on either.
"""
import glob
import re
import subprocess
import sys


def k_loop(lines):
    addr = [int(l.split(":")[0], 16) for l in lines]
    best = None
    for i, line in enumerate(lines):
        j = re.search(r"\tj\w+\s+([0-9a-f]+) <", line)
        if not j or int(j.group(1), 16) >= addr[i]:
            continue
        body = [x for x, a in zip(lines, addr) if int(j.group(1), 16) <= a <= addr[i]]
        fmas = sum("vfmadd" in x for x in body)
        if any("broadcast" in x for x in body) and fmas >= 1 and (best is None or len(body) < len(best)):
            best = body
    return best


def main():
    so = sys.argv[1] if len(sys.argv) > 1 else sorted(glob.glob("nnc/_core*.so"))[0]
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", so], capture_output=True, text=True,
                         check=True).stdout
    bad = 0
    funcs = re.split(r"\n(?=[0-9a-f]+ <)", out)
    for func in funcs:
        m = re.match(r"[0-9a-f]+ <(nnc_gemm_(?:ukr_\w+|small_part\w*)__(avx2|avx512))>:", func)
        if not m:
            continue
        lines = [l for l in func.splitlines()[1:] if re.match(r"\s+[0-9a-f]+:", l)]
        body = k_loop(lines)
        if body is None:
            if "small_part" not in m.group(1):  # there only when the 1x4 kernel was inlined
                print(f"{m.group(1):36s} no k loop found")
                bad = 1
            continue
        spills = [x for x in body if re.search(r"\(%r[sb]p", x)]
        fmas = sum("vfmadd" in x for x in body)
        print(f"{m.group(1):36s} k loop {len(body):3d} insns, {fmas:2d} FMAs, {len(spills)} stack refs")
        bad |= bool(spills)
    conv = {m.group(1): "rep stos" in func for func in funcs
            for m in [re.match(r"[0-9a-f]+ <(nnc_conv_(?:ukr|dw_ukr|wgrad_ukr|slide)\w*__(?:avx2|avx512))>:", func)] if m}
    images = [name for name, image in conv.items() if image]
    print(f"conv micro-kernels: {len(conv)}, zero-filling a stack image: {len(images)} {' '.join(images)}")
    bad |= bool(images) or not conv
    sys.exit(bad)


if __name__ == "__main__":
    main()
