import pytest

from openepay.secretbox import SecretBox, SecretBoxError


def test_sealed_secrets_open_only_with_the_same_key_and_row():
    box = SecretBox("master one")
    sealed = box.seal("merchant-key-123", "merchant-key:1000")
    assert "merchant-key-123" not in sealed
    assert box.open(sealed, "merchant-key:1000") == "merchant-key-123"
    with pytest.raises(SecretBoxError):
        box.open(sealed, "merchant-key:1001")
    with pytest.raises(SecretBoxError):
        SecretBox("master two").open(sealed, "merchant-key:1000")


def test_sealing_twice_gives_different_ciphertexts():
    box = SecretBox("m")
    assert box.seal("k", "c") != box.seal("k", "c")
