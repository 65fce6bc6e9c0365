"""Compile every kernel for Hopper (sm_90a) on any machine, no GPU needed, and report ptxas's register use.

Run without TRITON_INTERPRET (the interpreter never compiles). Prints one JSON line per compiled variant:
{"kernel", "variant", "ok", "error", "registers", "spill_bytes", "shared_bytes"}. `test_triton_compile_sm90.py`
runs it; it is also a quick check before a GPU run: `python kernels/tests/sm90_compile.py`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

assert os.environ.get("TRITON_INTERPRET", "0") != "1", (
    "run without TRITON_INTERPRET: the interpreter compiles nothing"
)

import torch  # noqa: E402
import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402

from omni_kernels import attention, norms  # noqa: E402

TARGET = GPUTarget("cuda", 90, 32)
PTXAS = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "ptxas"
SCALARS_FP32 = {"qk_scale", "sm_scale", "eps"}
SIZES = {
    "H",
    "L",
    "Lq",
    "Lk",
    "G",
    "C",
    "D",
}  # capitalised scalars; every other capitalised argument is a pointer


def compile_sm90(fn, pointers: dict, constexprs: dict, num_warps: int, num_stages: int = 3) -> dict:
    """Compile `fn` (a @triton.jit kernel) with pointer args typed by `pointers` (None: absent) and i32 scalars.

    Scalars get the value 4096 (divisible by 16, as real strides mostly are), so the code is specialised the
    way a real launch specialises it.
    """
    signature, constants, attrs = {}, {}, {}
    for index, name in enumerate(fn.arg_names):
        if name in constexprs:
            signature[name], constants[name] = "constexpr", constexprs[name]
        elif name[0].isupper() and name not in SIZES:
            kind = pointers.get(name, pointers["*"])
            if kind is None:
                signature[name], constants[name] = "constexpr", None
            else:
                signature[name] = kind
                attrs[(index,)] = [["tt.divisibility", 16]]
        elif name in SCALARS_FP32:
            signature[name] = "fp32"
        else:
            signature[name] = "i32"
            attrs[(index,)] = [["tt.divisibility", 16]]
    source = triton.compiler.ASTSource(fn=fn, signature=signature, constexprs=constants, attrs=attrs)
    kernel = triton.compile(source, target=TARGET, options={"num_warps": num_warps, "num_stages": num_stages})
    with tempfile.NamedTemporaryFile("w", suffix=".ptx", delete=False) as ptx:
        ptx.write(kernel.asm["ptx"])
    report = subprocess.run(
        [str(PTXAS), "-v", "--gpu-name", "sm_90a", ptx.name, "-o", os.devnull], capture_output=True, text=True
    ).stderr
    os.unlink(ptx.name)
    registers = re.findall(r"Used (\d+) registers", report)
    spills = re.findall(r"(\d+) bytes spill stores", report)
    return {
        "registers": int(registers[0]) if registers else None,
        "spill_bytes": int(spills[0]) if spills else None,
        "shared_bytes": kernel.metadata.shared,
    }


def attention_variants(dtype: str = "*bf16", head_dim: int = 128, first_only: bool = False):
    """(kernel name, variant, fn, pointers, constexprs, warps, stages) for the attention kernels' configs.

    `first_only`: only the first config each kernel keeps after pruning, its preferred one at this size.
    """
    block_d = attention._block_d(head_dim)
    precision = "ieee" if dtype == "*fp32" else "tf32"
    for masked in (False, True):
        pointers = {
            "*": dtype,
            "Lse": "*fp32",
            "Delta": "*fp32",
            "Cos": "*fp32",
            "Sin": "*fp32",
            "Mask": "*u8" if masked else None,
            "LiveBlocks": "*i32" if masked else None,
            "LiveCounts": "*i32" if masked else None,
            "SeqlensQ": "*i32" if masked else None,
            "SeqlensK": "*i32" if masked else None,
        }
        flags = dict(HEAD_DIM=head_dim, BLOCK_D=block_d, HAS_MASK=masked, VARLEN=masked, ROPE=masked)
        flags["DOT_PRECISION"] = precision
        tag = f"{dtype[1:]} d={head_dim} {'mask+varlen+rope' if masked else 'plain'}"
        kernels = (
            ("fwd", attention._attn_fwd_kernel, attention._FWD_CONFIGS, {"STORE_QROT": masked}),
            ("dkdv", attention._attn_bwd_dkdv_kernel, attention._DKDV_CONFIGS, {"EVEN_N": True}),
            ("dq", attention._attn_bwd_dq_kernel, attention._DQ_CONFIGS, {}),
        )
        torch_dtype = {"*bf16": torch.bfloat16, "*fp16": torch.float16, "*fp32": torch.float32}[dtype]
        for name, fn, configs, extra in kernels:
            named_args = {"Q": torch.empty(0, dtype=torch_dtype), "Lq": 16384, "Lk": 16384}
            if name != "dkdv":
                named_args["LiveBlocks"] = None
            kept = attention._prune(configs, named_args, BLOCK_D=block_d, HAS_MASK=masked)
            for config in kept[:1] if first_only else kept:
                constexprs = dict(flags, **extra, **config.kwargs)
                variant = f"{tag} {config.kwargs['BLOCK_M']}x{config.kwargs['BLOCK_N']} w{config.num_warps}"
                yield (
                    name,
                    f"{variant} s{config.num_stages}",
                    fn,
                    pointers,
                    constexprs,
                    config.num_warps,
                    config.num_stages,
                )


def helper_variants():
    """The RoPE, delta and norm kernels at model widths (bf16)."""
    pointers = {
        "*": "*bf16",
        "Cos": "*fp32",
        "Sin": "*fp32",
        "Delta": "*fp32",
        "Mean": "*fp32",
        "Rstd": "*fp32",
    }
    pointers.update({"Shift": "*fp32", "Scale": "*fp32", "Gate": "*fp32"})
    pointers.update(
        {"DShiftPart": "*fp32", "DScalePart": "*fp32", "DGatePart": "*fp32", "DWeightPart": "*fp32"}
    )
    yield "rope", "d=128", attention._rope_kernel, pointers, dict(HEAD_DIM=128, BLOCK_D=128, BLOCK_L=64), 4, 3
    delta = dict(HEAD_DIM=128, BLOCK_D=128, BLOCK_M=64)
    yield "bwd_preprocess", "d=128", attention._bwd_preprocess_kernel, pointers, delta, 4, 3
    rows = dict(BLOCK_ROWS=1, BLOCK_D=4096)
    for name, fn in (
        ("layer_norm_modulate_fwd", norms._layer_norm_modulate_fwd_kernel),
        ("layer_norm_modulate_bwd", norms._layer_norm_modulate_bwd_kernel),
        ("gated_residual_fwd", norms._gated_residual_fwd_kernel),
        ("gated_residual_bwd", norms._gated_residual_bwd_kernel),
    ):
        yield name, "D=3072", fn, pointers, rows, 8, 3
    for name, fn in (
        ("rms_norm_rope_fwd", norms._rms_norm_rope_fwd_kernel),
        ("rms_norm_rope_bwd", norms._rms_norm_rope_bwd_kernel),
    ):
        yield name, "24x128", fn, pointers, dict(HEAD_DIM=128, ROPE=True, BLOCK_ROWS=1, BLOCK_C=4096), 8, 3


def main(argv: list[str]) -> int:
    """Default: every helper kernel and each attention kernel's first config (bf16 d=128, fp16 d=72, fp32 d=64).

    `--all`: every config of every attention kernel at bf16 d=64/128/256, fp16 d=72 and fp32 d=128 (minutes).
    """
    variants = list(helper_variants())
    if "--all" in argv:
        for dtype, head_dim in (("*bf16", 128), ("*bf16", 64), ("*fp16", 72), ("*fp32", 128), ("*bf16", 256)):
            variants += list(attention_variants(dtype, head_dim))
    else:
        for dtype, head_dim in (("*bf16", 128), ("*fp16", 72), ("*fp32", 64)):
            variants += list(attention_variants(dtype, head_dim, first_only=True))
    failed = 0
    for name, variant, fn, pointers, constexprs, warps, stages in variants:
        row = {"kernel": name, "variant": variant, "ok": True, "error": None}
        try:
            row.update(compile_sm90(fn, pointers, constexprs, warps, stages))
        except Exception as error:  # report every variant, then fail
            row.update(ok=False, error=f"{type(error).__name__}: {str(error)[:500]}")
            failed += 1
        print(json.dumps(row), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
