"""The AVX512-VNNI int8 GEMM (kernels/int8_gemm_cpu.c) against its torch reference, and the
reference against fbgemm (what the engine ran before, and runs where the kernel cannot): all three
agree bit for bit. Also how the kernel is built, and that it gives way where it cannot be."""

from __future__ import annotations

import pytest
import torch

from engine.model import quantize
from engine.user_cache import cache_dir
from kernels import int8_gemm_cpu
from kernels.int8_gemm_ref import int8_gemm_ref, round_rows_ref

GEMM = int8_gemm_cpu.load(cache_dir() / "kernels")
needs_gemm = pytest.mark.skipif(GEMM is None, reason="no AVX512-VNNI or C compiler")
FBGEMM_8_BIT = quantize.activation_levels() == 127


def _case(n: int, k: int, m: int, worst: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`m` rows of inputs of very different sizes, an int8 weight [n, k] and its scales. `worst`:
    every product 127 x 127 of one sign, sums far past 2^24 (where fp32 accumulation would round)."""
    if worst:
        q = torch.full((n, k), 127, dtype=torch.int8)
        q[::2] = -127
        return torch.full((m, k), 3.0), q, torch.rand(n) * 1e-2
    x = torch.randn(m, k) * torch.logspace(-3, 3, m)[:, None]
    x[0] = 0  # its scale is the smallest normal float
    q, scale = quantize.quantize_rows(torch.randn(n, k) * torch.rand(n, 1))
    return x, q, scale


SHAPES = [(32, 4), (96, 132), (224, 3072), (64, 9216)]


@needs_gemm
@pytest.mark.parametrize("n,k", SHAPES)
@pytest.mark.parametrize("worst", [False, True])
def test_the_kernel_equals_its_reference_at_every_width(n, k, worst):
    for m in (
        1,
        2,
        5,
        8,
        13,
        14,
        15,
        16,
        17,
        22,
        23,
        72,
    ):  # tiles: the first of up to 14 rows, then of up to 8
        x, q, scale = _case(n, k, m, worst)
        mult = scale * torch.tensor(1 / 127)
        w = int8_gemm_cpu.interleave(q)
        comp = GEMM.zero_point_shares(w)
        assert torch.equal(comp, q.sum(dim=1, dtype=torch.int32) * 128)
        assert torch.equal(GEMM.matmul(x, w, comp, mult), int8_gemm_ref(*round_rows_ref(x), q, mult)), m
        xb = x.bfloat16()  # bf16 in and out: the fp32 product of its widened values, rounded as torch rounds
        want = int8_gemm_ref(*round_rows_ref(xb.float()), q, mult).bfloat16()
        assert torch.equal(GEMM.matmul(xb, w, comp, mult), want), m


@needs_gemm
def test_weights_are_rounded_as_torch_rounds_them_straight_into_the_layout():
    torch.manual_seed(0)
    for n, k in ((32, 4), (64, 64), (64, 132), (96, 3072)):
        w = (torch.randn(n, k) * torch.logspace(-4, 2, n)[:, None]).bfloat16()
        w[3] = 0  # amax clamped
        w[5, :3] = torch.tensor([2.0, 1.0, -1.0])  # 1 x (127 / 2) = 63.5: a tie, to even
        q, scale = quantize.quantize_rows(w)
        assert q[5, 1] == 64 and q[5, 2] == -64
        panels, got_scale = torch.empty(int8_gemm_cpu.layout_shape(n, k), dtype=torch.int8), torch.empty(n)
        GEMM.quantize_weight(w, panels, got_scale)
        assert torch.equal(int8_gemm_cpu.deinterleave(panels), q) and torch.equal(got_scale, scale)


def test_rounding_ties_go_to_even():
    x = torch.tensor([[0.5 / 127, 1.5 / 127, -0.5 / 127, 1.0, -1.0]])
    a, scale = round_rows_ref(x)
    assert a.tolist() == [[128, 130, 128, 255, 1]] and scale.tolist() == [1.0]
    if GEMM is not None:  # one channel of weights 1: out = (a - 128) * (1 / 127) * the row's scale
        q = torch.zeros(32, 8, dtype=torch.int8)
        q[0, :5] = torch.eye(5, dtype=torch.int8)[0]
        w = int8_gemm_cpu.interleave(q)
        x8 = torch.cat([x, torch.zeros(1, 3)], dim=1)
        got = GEMM.matmul(x8, w, GEMM.zero_point_shares(w), torch.full((32,), 1 / 127))
        assert got[0, 0] == torch.tensor(0.0)  # 128 - 128: the tie 0.5 rounded to even (0)


@pytest.mark.skipif(not FBGEMM_8_BIT, reason="fbgemm with 8-bit activations (AVX512-VNNI) only")
@pytest.mark.parametrize("worst", [False, True])
def test_the_reference_is_fbgemm_s_arithmetic(worst):
    for m in (1, 8, 17):
        x, q, scale = _case(96, 192, m, worst)
        fbgemm = quantize._w8a8(x, [quantize._prepack(q, scale)], 127)
        assert torch.equal(int8_gemm_ref(*round_rows_ref(x), q, scale * torch.tensor(1 / 127)), fbgemm)


def test_interleaving_is_undone_exactly():
    q = torch.randint(-127, 128, (64, 12), dtype=torch.int8)
    w = int8_gemm_cpu.interleave(q)
    panel = w.flatten()[: 32 * 12]  # channels 0-31: 4 bytes of each in turn, then their next 4
    assert torch.equal(panel[:4], q[0, :4]) and torch.equal(panel[4:8], q[1, :4])
    assert torch.equal(panel[128:132], q[0, 4:8])
    assert torch.equal(int8_gemm_cpu.deinterleave(w), q)
    assert int8_gemm_cpu.fits(32, 12) and not int8_gemm_cpu.fits(48, 12) and not int8_gemm_cpu.fits(32, 10)


@needs_gemm
def test_it_is_built_once_per_folder_and_a_broken_compiler_gives_way_to_fbgemm(tmp_path, monkeypatch, caplog):
    built = int8_gemm_cpu.load(tmp_path / "a")
    [library] = (tmp_path / "a").iterdir()
    assert built is not None and library.suffix == ".so"
    modified = library.stat().st_mtime_ns
    int8_gemm_cpu.load.cache_clear()  # a new process: finds the library built
    assert int8_gemm_cpu.load(tmp_path / "a") is not None and library.stat().st_mtime_ns == modified
    for compiler, said in (("false", "not built"), (str(tmp_path / "no-such-cc"), "no C compiler")):
        monkeypatch.setenv("CC", compiler)
        with caplog.at_level("WARNING", logger="kernels.int8_gemm_cpu"):
            assert int8_gemm_cpu.load(tmp_path / compiler.replace("/", "_")) is None
        assert said in caplog.text
        caplog.clear()
    int8_gemm_cpu.load.cache_clear()
