"""Every word the console asks for is in its catalogue, in both languages."""

from __future__ import annotations

import re
from pathlib import Path

import openepay
from openepay.web.admin.i18n import CATALOGUE

PACKAGE = Path(openepay.__file__).parent
# t('word') in templates; notices, errors and refusals the code hands to a page by their catalogue key.
ASKED = re.compile(
    r"""\bt\(\s*['"]([a-z_0-9]+)['"]\s*\)|(?:notice|error|title)=['"]([a-z_0-9]+)['"]|ActionRefused\(['"]([a-z_0-9]+)['"]\)"""
)


def test_every_word_asked_for_is_in_the_catalogue_in_chinese_and_english():
    sources = [
        *PACKAGE.glob("web/templates/admin/*.html"),
        *PACKAGE.glob("web/admin/*.py"),
        *PACKAGE.glob("admin/*.py"),
    ]
    asked = {key for path in sources for match in ASKED.finditer(path.read_text()) for key in match.groups() if key}
    assert len(asked) > 60
    assert sorted(asked - set(CATALOGUE)) == []
    assert all(
        chinese and english and chinese != english for chinese, english in CATALOGUE.values() if chinese != "English"
    )
