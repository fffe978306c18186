import pytest

from openepay.secretbox import SecretBox, SecretBoxError


def proven_box(master_key: str) -> SecretBox:
    """A box whose key a (new) database has accepted."""
    box = SecretBox(master_key)
    box.prove(box.new_check())
    return box


def test_sealed_secrets_open_only_with_the_same_key_and_row():
    box = proven_box("master one")
    sealed = box.seal("merchant-key-123", "merchant-key:1000")
    assert "merchant-key-123" not in sealed
    assert box.open(sealed, "merchant-key:1000") == "merchant-key-123"
    with pytest.raises(SecretBoxError):
        box.open(sealed, "merchant-key:1001")
    with pytest.raises(SecretBoxError):
        SecretBox("master two").open(sealed, "merchant-key:1000")


def test_sealing_twice_gives_different_ciphertexts():
    box = proven_box("m")
    assert box.seal("k", "c") != box.seal("k", "c")


def test_a_box_seals_nothing_until_its_key_is_proven():
    box = SecretBox("master one")
    with pytest.raises(SecretBoxError, match="not yet checked"):
        box.seal("merchant-key-123", "merchant-key:1000")
    wrong = SecretBox("master two")
    with pytest.raises(SecretBoxError):
        wrong.prove(box.new_check())
    with pytest.raises(SecretBoxError, match="not yet checked"):
        wrong.seal("merchant-key-123", "merchant-key:1000")
