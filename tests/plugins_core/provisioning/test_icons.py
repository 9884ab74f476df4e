"""The SVG sanitizer: hostile icons are refused with a reason; clean ones round-trip."""

from __future__ import annotations

from xml.etree import ElementTree as ET

import pytest

from plugins_core.provisioning.icons import MAX_ICON_BYTES, IconError, load_icon, sanitize_svg

SVG = 'xmlns="http://www.w3.org/2000/svg"'
XLINK = 'xmlns:xlink="http://www.w3.org/1999/xlink"'

CLEAN = f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- exported by a drawing tool -->
<svg {SVG} {XLINK} viewBox="0 0 24 24" width="24" height="24">
  <title>Vendor &amp; co</title>
  <desc>A clean icon</desc>
  <defs>
    <linearGradient id="g" x1="0" x2="1"><stop offset="0" stop-color="#fff"/>
      <stop offset="1" stop-color="#000"/></linearGradient>
    <clipPath id="c"><rect width="24" height="24" rx="4"/></clipPath>
    <symbol id="dot"><circle cx="2" cy="2" r="2"/></symbol>
    <style>.a {{ fill: url(#g); stroke: url('#g') }}</style>
  </defs>
  <g clip-path="url(#c)" style="fill: url(#g); opacity: .9">
    <path class="a" d="M0 0h24v24H0z"/>
    <use xlink:href="#dot" x="4" y="4"/><use href="#dot" x="10" y="10"/>
    <text x="2" y="20" xml:space="preserve">Hi <tspan>there</tspan></text>
  </g>
</svg>
""".encode()

HOSTILE = {
    "script": (f"<svg {SVG}><script>alert(1)</script></svg>", "<script>"),
    "foreignObject": (
        f"<svg {SVG}><foreignObject><div xmlns='http://www.w3.org/1999/xhtml'>x</div>"
        "</foreignObject></svg>",
        "<foreignObject>",
    ),
    "onload": (f'<svg {SVG} onload="alert(1)"><rect/></svg>', "onload"),
    "onclick on a child": (f'<svg {SVG}><rect ONCLICK="x()"/></svg>', "event handler"),
    "xlink:href external": (
        f'<svg {SVG} {XLINK}><use xlink:href="http://evil/x.svg#a"/></svg>',
        "local '#id'",
    ),
    "href javascript": (f'<svg {SVG}><use href="javascript:alert(1)"/></svg>', "local"),
    "use external with fragment": (f'<svg {SVG}><use href="http://evil#x"/></svg>', "local"),
    "style @import": (
        f"<svg {SVG}><style>@import url(http://evil/x.css);</style></svg>",
        "@import",
    ),
    "style expression": (
        f"<svg {SVG}><style>rect {{ width: expression(alert(1)) }}</style></svg>",
        "expression",
    ),
    "style element url": (
        f"<svg {SVG}><style>rect {{ fill: url(https://x/y) }}</style></svg>",
        "external",
    ),
    "style attribute url": (
        f'<svg {SVG}><rect style="background:url(http://x)"/></svg>',
        "external",
    ),
    "style attribute relative url": (
        f'<svg {SVG}><rect style="fill:url(x.svg#a)"/></svg>',
        "outside the icon",
    ),
    "css escape": (f'<svg {SVG}><rect style="fill:u\\72l(x)"/></svg>', "CSS escapes"),
    "attribute url": (f'<svg {SVG}><rect filter="url(//evil/f.svg#x)"/></svg>', "outside the icon"),
    "data uri in attribute": (
        f'<svg {SVG}><rect fill="url(data:image/svg+xml;base64,PHN2Zz4=)"/></svg>',
        "data:",
    ),
    "data uri href": (f'<svg {SVG}><use href="data:image/svg+xml,&lt;svg/&gt;"/></svg>', "local"),
    "entity-encoded javascript": (
        f'<svg {SVG}><rect fill="&#106;avascript:alert(1)"/></svg>',
        "javascript:",
    ),
    "whitespace-split javascript": (
        f'<svg {SVG}><rect fill="java\tscript:x"/></svg>',
        "javascript:",
    ),
    "billion laughs": (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        f"<svg {SVG}><text>&lol2;</text></svg>",
        "DOCTYPE",
    ),
    "external entity": (
        '<!DOCTYPE svg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        f"<svg {SVG}><text>&xxe;</text></svg>",
        "DOCTYPE",
    ),
    "stylesheet processing instruction": (
        f'<?xml-stylesheet href="http://evil/x.css"?><svg {SVG}/>',
        "processing instruction",
    ),
    "image element": (f'<svg {SVG}><image href="#x"/></svg>', "<image>"),
    "anchor": (f'<svg {SVG}><a href="#x"><rect/></a></svg>', "<a>"),
    "animate can rewrite href": (
        f'<svg {SVG}><animate attributeName="href" to="javascript:x"/></svg>',
        "<animate>",
    ),
    "element in a foreign namespace": (
        f'<svg {SVG} xmlns:h="http://www.w3.org/1999/xhtml"><h:iframe/></svg>',
        "not in the SVG namespace",
    ),
    "attribute in a foreign namespace": (
        f'<svg {SVG} xmlns:ev="http://www.w3.org/2001/xml-events"><rect ev:event="click"/></svg>',
        "foreign namespace",
    ),
    "non-svg root": ('<html xmlns="http://www.w3.org/1999/xhtml"><body/></html>', "root"),
    "svg without namespace": ("<svg><rect/></svg>", "root"),
    "malformed": (f"<svg {SVG}><rect></svg>", "well-formed"),
    "not xml": ("just text", "well-formed"),
    "empty": ("   ", "empty"),
}


@pytest.mark.parametrize(("markup", "reason"), HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_icons_are_refused_with_a_reason(markup: str, reason: str) -> None:
    with pytest.raises(IconError) as info:
        sanitize_svg(markup.encode())
    assert reason in str(info.value)


def test_too_large_is_refused_before_parsing() -> None:
    padding = b"<!--" + b"x" * MAX_ICON_BYTES + b"-->"
    with pytest.raises(IconError, match="limit is 65536"):
        sanitize_svg(f"<svg {SVG}>".encode() + padding + b"</svg>")


def test_exactly_at_the_limit_is_accepted() -> None:
    head, tail = f"<svg {SVG}><!--".encode(), b"--></svg>"
    data = head + b"x" * (MAX_ICON_BYTES - len(head) - len(tail)) + tail
    assert len(data) == MAX_ICON_BYTES
    assert sanitize_svg(data) == f"<svg {SVG}/>"


def test_non_utf8_and_utf16_are_refused() -> None:
    with pytest.raises(IconError, match="UTF-8"):
        sanitize_svg(b"\xff\xfe<\x00s\x00v\x00g\x00")
    with pytest.raises(IconError):
        # UTF-16 without a BOM would let expat see a DOCTYPE the text check cannot
        sanitize_svg('<!DOCTYPE x [<!ENTITY a "b">]><svg/>'.encode("utf-16-le"))


def test_a_clean_icon_passes_and_round_trips() -> None:
    once = sanitize_svg(CLEAN)
    assert once.startswith(f"<svg {SVG} {XLINK} ")
    assert sanitize_svg(once.encode()) == once
    root = ET.fromstring(once)  # noqa: S314 - our own sanitized output
    names = {node.tag.split("}")[1] for node in root.iter()}
    assert {
        "svg",
        "title",
        "linearGradient",
        "clipPath",
        "symbol",
        "use",
        "style",
        "tspan",
        "text",
        "path",
        "g",
    } <= names
    assert 'xlink:href="#dot"' in once and 'href="#dot"' in once
    assert 'xml:space="preserve"' in once
    assert "Vendor &amp; co" in once
    assert "exported by a drawing tool" not in once  # comments are dropped
    assert "<?xml" not in once


def test_load_icon_reads_and_sanitizes_a_package_resource() -> None:
    icon = load_icon("imbi_plugin_example:icon.svg")
    assert icon.startswith(f"<svg {SVG}") and "<circle" in icon


@pytest.mark.parametrize(
    "ref",
    [
        "imbi_plugin_example:missing.svg",
        "no_such_pkg:icon.svg",
        "imbi_plugin_example:../etc.svg",
        "not a ref",
        "",
    ],
)
def test_load_icon_refuses_bad_references(ref: str) -> None:
    with pytest.raises(IconError):
        load_icon(ref)
