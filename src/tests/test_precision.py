"""Training precision: auto picks bf16 only where the hardware multiplies it natively."""

from humanoid_vla.training import precision
import pytest
import torch

CPU = torch.device('cpu')


@pytest.fixture
def cpu_features(monkeypatch):
    """Pretend the CPU has (or lacks) AMX and AVX512-BF16: the one thing a test cannot choose."""
    def set_features(amx: bool, avx512_bf16: bool) -> None:
        monkeypatch.setattr(torch.cpu, '_is_amx_tile_supported', lambda: amx)
        monkeypatch.setattr(torch.cpu, '_is_avx512_bf16_supported', lambda: avx512_bf16)
    return set_features


@pytest.mark.parametrize('amx, avx512_bf16, expected', [
    (True, False, 'bf16'), (False, True, 'bf16'), (False, False, 'fp32')])
def test_auto_is_bf16_exactly_where_the_cpu_has_it(cpu_features, amx, avx512_bf16, expected):
    cpu_features(amx, avx512_bf16)
    assert precision.resolve_precision('auto', CPU) == expected
    # An explicit choice is kept whatever the hardware.
    assert precision.resolve_precision('fp32', CPU) == 'fp32'
    assert precision.resolve_precision('bf16', CPU) == 'bf16'


def test_bf16_on_a_cpu_that_emulates_it_is_warned_about(cpu_features):
    cpu_features(False, False)
    warning = precision.emulated_bf16_warning('bf16', CPU)
    assert 'emulated' in warning and 'auto or fp32' in warning
    assert precision.emulated_bf16_warning('fp32', CPU) is None
    assert precision.emulated_bf16_warning('auto', CPU) is None
    cpu_features(True, False)
    assert precision.emulated_bf16_warning('bf16', CPU) is None


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match='precision must be one of'):
        precision.resolve_precision('fp16', CPU)
