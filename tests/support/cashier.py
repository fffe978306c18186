"""The buyer's side of the cashier: browsers' user agents, a page read as the buyer reads it, its QR code."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import segno

from tests.support.epay import order_params, signed

DESKTOP_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
DESKTOP = {"User-Agent": DESKTOP_UA}
IPHONE = {"User-Agent": IPHONE_UA}

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Page(HTMLParser):
    """A page as the buyer reads it: the text and attributes of elements by id, and all body text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.html = html
        self._texts: dict[str, list[str]] = {}
        self.attrs: dict[str, dict[str, str | None]] = {}
        self._open: list[tuple[str, str | None]] = []
        self._body: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element_id = dict(attrs).get("id")
        if element_id:
            self.attrs[element_id] = dict(attrs)
            self._texts[element_id] = []
        if tag not in _VOID:
            self._open.append((tag, element_id))

    def handle_endtag(self, tag: str) -> None:
        if tag not in _VOID and self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if any(tag in ("script", "style", "title") for tag, _ in self._open):
            return
        self._body.append(data)
        for _, element_id in self._open:
            if element_id:
                self._texts[element_id].append(data)

    def text(self, element_id: str) -> str:
        return " ".join("".join(self._texts[element_id]).split())

    @property
    def body_text(self) -> str:
        return " ".join("".join(self._body).split())

    def has(self, element_id: str) -> bool:
        return element_id in self.attrs


def qr_matrix_of(html: str) -> list[list[bool]]:
    """The modules of the QR code drawn by the page's ``#qrcode`` SVG (segno's line paths)."""
    svg = re.search(r'id="qrcode"[^>]*>\s*(<svg.*?</svg>)', html, re.S)
    assert svg, "no inline SVG QR code on the page"
    path = re.search(r'<path[^>]*\bstroke="[^"]*"[^>]*\bd="([^"]+)"', svg.group(1))
    assert path, "the SVG draws no QR modules"
    x = y = 0.0
    dark: set[tuple[int, int]] = set()
    for command, args in re.findall(r"([A-Za-z])([^A-Za-z]*)", path.group(1)):
        numbers = [float(n) for n in args.replace(",", " ").split()]
        if command == "M":
            x, y = numbers
        elif command == "m":
            x, y = x + numbers[0], y + numbers[1]
        elif command == "h":
            dark.update((int(x) + i, int(y)) for i in range(int(numbers[0])))
            x += numbers[0]
        else:
            raise AssertionError(f"unexpected SVG path command {command!r}")
    left, top = min(c for c, _ in dark), min(r for _, r in dark)
    size = max(c for c, _ in dark) - left + 1
    return [[(left + c, top + r) in dark for c in range(size)] for r in range(size)]


def encodes(matrix: list[list[bool]], content: str) -> bool:
    """Whether the modules are a full QR code of ``content`` at some error correction level."""
    for level in "LMQH":
        symbol = segno.make(content, error=level, boost_error=False, micro=False)
        if [[bool(module) for module in row] for row in symbol.matrix] == matrix:
            return True
    return False


async def mapi_order(client, merchant, shop, out_trade_no: str, **overrides: str | None) -> dict:  # type: ignore
    params = order_params(merchant.pid, shop.url, out_trade_no, clientip="203.0.113.9", device="pc", **overrides)
    answer = (await client.post("/mapi.php", data=signed(params, merchant.key))).json()
    assert answer["code"] == 1, answer
    return answer
