"""Reading the gateway's answers, checking first that they have the form every answer of their kind has."""

from __future__ import annotations

import html
import re

import httpx

# What the gateway answers when something inside it failed: a server error in disguise.
SERVER_TROUBLE = "系统繁忙，请稍后再试"
MESSAGE = re.compile(r'<p class="message" id="message">(.*?)</p>', re.S)


def json_answer(response: httpx.Response) -> dict:
    """A JSON endpoint's answer: status 200 even for errors, JSON, an integer ``code``."""
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"].startswith("application/json")
    answer = response.json()
    assert type(answer["code"]) is int
    return answer


def page_message(response: httpx.Response, status: int = 200) -> str:
    """The one message of an HTML page (the error page, mostly), as the browser shows it."""
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith("text/html")
    messages = MESSAGE.findall(response.text)
    assert len(messages) == 1, response.text[:500]
    return html.unescape(messages[0])
