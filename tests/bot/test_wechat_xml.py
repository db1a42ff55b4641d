"""The fast reader of flat WeChat documents agrees with the XML parser on everything it
accepts, and leaves everything else (nested, entities, DTDs, forbidden characters) to it."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.wechat import Refused, _element, parse_flat, parse_xml

REFUSED = "refused"


def parsed(doc: str):
    """What the XML parser makes of ``doc`` (the reference)."""
    try:
        root = fromstring(doc.encode("utf-8"), forbid_dtd=True)
    except (ET.ParseError, DefusedXmlException):
        return REFUSED
    if root.tag != "xml":
        return REFUSED
    fields = _element(root)
    return fields if isinstance(fields, dict) else {}


TEXT_MESSAGE = (
    "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o_1]]></FromUserName>"
    "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>"
    "<Content><![CDATA[ 你好 <b>&amp; ]] ] ]> ]]]]><![CDATA[> ]]></Content><MsgId>42</MsgId></xml>"
)


@pytest.mark.parametrize(
    "doc",
    [
        "<xml><ToUserName><![CDATA[gh]]></ToUserName><Content><![CDATA[帮助]]></Content><MsgId>1</MsgId></xml>",
        "\n<xml>\n  <A><![CDATA[x]]></A>\n  <B> 12 </B>\n  <C></C><D><![CDATA[]]></D>\n</xml>\n",
        "<xml><Content><![CDATA[a ] b ]] c ]>]]></Content><Content>last wins</Content></xml>",
        "<xml></xml>",
    ],
)
def test_flat_documents_read_as_the_parser_reads_them(doc):
    assert parse_flat(doc) is not None
    assert parse_flat(doc) == parsed(doc)
    assert parse_flat(doc.encode("utf-8")) == parsed(doc)


@pytest.mark.parametrize(
    "doc",
    [
        TEXT_MESSAGE,  # a CDATA section split in two: the parser joins them
        "<xml><ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType></ScanCodeInfo></xml>",  # nested
        "<xml><Content>a &amp; b</Content></xml>",  # entity
        '<?xml version="1.0"?><xml><A>1</A></xml>',
        '<!DOCTYPE xml [<!ENTITY e "boom">]><xml><A>&e;</A></xml>',
        "<xml><!-- note --><A>1</A></xml>",
        "<xml><A>line\r\nend</A></xml>",
        "<xml><A>\x01</A></xml>",
        "<xml><A><![CDATA[x]]>y</A></xml>",
        "<xml><A>x]]>y</A></xml>",
        '<xml a="1"><A>1</A></xml>',
        "<xml><A>1</B></xml>",
        "<notxml><A>1</A></notxml>",
        "\u3000<xml><A>1</A></xml>",
        "<xml><A>1</A></xml><xml></xml>",
    ],
)
def test_anything_else_is_left_to_the_parser(doc):
    assert parse_flat(doc) is None
    expected = parsed(doc)
    if expected == REFUSED:
        with pytest.raises(Refused) as exc:
            parse_xml(doc)
        assert 400 <= exc.value.status < 500
    else:
        assert parse_xml(doc) == expected


names = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,8}\Z")
tokens = st.sampled_from([*"ab ]>[<&;/\n\t\r\x01\x1f\ufffe中文😀!-", "]]>", "]]", "CDATA", "&amp;"])
values = st.lists(tokens, max_size=8).map("".join)


@st.composite
def documents(draw):
    parts = []
    for _ in range(draw(st.integers(0, 6))):
        name, value = draw(names), draw(values)
        space = draw(st.sampled_from(["", " ", "\n  ", "\t"]))
        if draw(st.booleans()):
            parts.append(f"{space}<{name}><![CDATA[{value}]]></{name}>")
        else:
            parts.append(f"{space}<{name}>{value}</{name}>")
    return "<xml>" + "".join(parts) + draw(st.sampled_from(["", "\n"])) + "</xml>"


@settings(max_examples=200, deadline=None)
@given(documents())
def test_whatever_the_fast_reader_accepts_the_parser_reads_the_same(doc):
    fast = parse_flat(doc)
    if fast is not None:
        assert fast == parsed(doc)
        assert parse_xml(doc) == fast
