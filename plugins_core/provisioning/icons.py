"""Service icons: the SVG sanitizer that every icon passes before it is stored or shown.

Owns ``sanitize_svg`` (bytes in, a clean re-serialized SVG string out), ``load_icon`` (reads a
manifest's ``"package.module:file.svg"`` resource and sanitizes it), ``IconError`` and the
limits (``MAX_ICON_BYTES``, the element allow-list).

Policy: **refuse, never strip.** An icon with anything outside the allow-list is rejected as a
whole with an ``IconError`` naming the first problem found; nothing is silently removed. That
keeps the rule simple to test and means a stored icon is exactly what its author shipped
(re-serialized), never a half-cleaned variant. The only things dropped are XML comments and
whitespace-free formatting, which carry no behaviour.

What is refused:
- more than ``MAX_ICON_BYTES`` (checked before parsing), non-UTF-8 text;
- any ``<!DOCTYPE`` or ``<!ENTITY`` declaration (XXE, billion laughs), checked on the raw text
  before the parser sees it; processing instructions (``<?xml-stylesheet ...?>``);
- malformed XML, a root that is not ``svg`` in the SVG namespace, elements in another
  namespace or outside ``ALLOWED_ELEMENTS`` (so ``script``, ``foreignObject``, ``image``,
  ``a``, ``animate``, filters ... are refused);
- event-handler attributes (``on*``), attributes in foreign namespaces other than
  ``xlink:href``, ``xml:space`` and ``xml:lang``;
- ``href`` / ``xlink:href`` not starting with ``#`` (so ``<use>`` may only point inside the
  icon);
- in any attribute value or CSS: ``javascript:``, ``vbscript:``, ``data:``, ``://``,
  ``url(...)`` whose target is not ``#...``; in CSS also ``@import``, ``expression(``,
  ``behavior``, ``-moz-binding`` and backslash escapes (which could spell any of these).
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

__all__ = ["ALLOWED_ELEMENTS", "MAX_ICON_BYTES", "IconError", "load_icon", "sanitize_svg"]

MAX_ICON_BYTES = 65536
"""Largest icon accepted, in bytes, checked before any parsing."""

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
XML_NS = "http://www.w3.org/XML/1998/namespace"

_STRUCTURE = ("svg", "g", "defs", "symbol", "use", "title", "desc", "style")
_SHAPES = ("path", "circle", "ellipse", "rect", "line", "polyline", "polygon", "text", "tspan")
_PAINT = ("linearGradient", "radialGradient", "stop", "clipPath", "mask")
ALLOWED_ELEMENTS = frozenset(_STRUCTURE + _SHAPES + _PAINT)
"""SVG elements an icon may use; ``style`` only with CSS that passes ``_check_css``."""

_ICON_REF_RE = re.compile(r"^(?P<package>[A-Za-z_][\w.]*):(?P<name>[\w.-]+\.svg)$")
_DECLARATION_RE = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_SPACE_RE = re.compile(r"[\s\x00-\x1f\x7f]+")
_URL_RE = re.compile(r"url\(\s*(['\"]?)(?P<target>[^)'\"]*)\1\s*\)", re.IGNORECASE)
_DANGEROUS_VALUES = ("javascript:", "vbscript:", "data:", "://")
_DANGEROUS_CSS = ("@import", "expression(", "behavior", "-moz-binding", "\\")
_XML_ATTRS = {f"{{{XML_NS}}}space": "xml:space", f"{{{XML_NS}}}lang": "xml:lang"}


class IconError(ValueError):
    """The icon was refused; the message says why (never includes the icon itself)."""


class _Builder(ET.TreeBuilder):
    """A tree builder that refuses processing instructions wherever they appear."""

    def pi(self, target: str, data: str | None = None) -> ET.Element:
        raise IconError(f"processing instructions are not allowed (<?{target} ...?>)")


def _split(tag: str) -> tuple[str, str]:
    """``{namespace}local`` as ``(namespace, local)``; no namespace gives ``""``."""
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


def _check_value(value: str, where: str) -> None:
    """Refuse external references and script URLs in an attribute value or CSS text."""
    compact = _SPACE_RE.sub("", value).lower()
    for needle in _DANGEROUS_VALUES:
        if needle in compact:
            raise IconError(f"{where} contains an external or script reference ({needle!r})")
    urls = list(_URL_RE.finditer(compact))
    for match in urls:
        if not match.group("target").startswith("#"):
            raise IconError(f"{where} has url() pointing outside the icon")
    if compact.count("url(") != len(urls):
        raise IconError(f"{where} has a url() that cannot be checked")


def _check_css(css: str, where: str) -> None:
    compact = _SPACE_RE.sub("", css).lower()
    for needle in _DANGEROUS_CSS:
        if needle in compact:
            what = "CSS escapes" if needle == "\\" else repr(needle)
            raise IconError(f"{where} uses {what}, which icons may not use")
    _check_value(css, where)


def _attribute_name(element: str, name: str) -> str:
    """The serialized name of an allowed attribute, or ``IconError``."""
    namespace, local = _split(name)
    if local.lower().startswith("on"):
        raise IconError(f"<{element}> has an event handler attribute {local!r}")
    if namespace == "":
        return local
    if namespace == XLINK_NS and local == "href":
        return "xlink:href"
    if name in _XML_ATTRS:
        return _XML_ATTRS[name]
    raise IconError(f"<{element}> has attribute {local!r} in foreign namespace {namespace!r}")


def _check_element(node: ET.Element) -> None:
    namespace, local = _split(node.tag)
    if namespace != SVG_NS:
        raise IconError(f"element <{local}> is not in the SVG namespace")
    if local not in ALLOWED_ELEMENTS:
        raise IconError(f"element <{local}> is not allowed in an icon")
    for name, value in node.attrib.items():
        serialized = _attribute_name(local, name)
        where = f"<{local} {serialized}>"
        if serialized in ("href", "xlink:href") and not value.strip().startswith("#"):
            raise IconError(f"{where} must be a local '#id' reference")
        if serialized == "style":
            _check_css(value, where)
        else:
            _check_value(value, where)
    if local == "style":
        _check_css("".join(node.itertext()), "<style>")


def _serialize(node: ET.Element, out: list[str], *, root: bool, xlink: bool) -> None:
    _, local = _split(node.tag)
    out.append(f"<{local}")
    if root:
        out.append(f' xmlns="{SVG_NS}"')
        if xlink:
            out.append(f' xmlns:xlink="{XLINK_NS}"')
    for name, value in node.attrib.items():
        out.append(f" {_attribute_name(local, name)}={quoteattr(value)}")
    children = list(node)
    if not children and not node.text:
        out.append("/>")
    else:
        out.append(">")
        if node.text:
            out.append(escape(node.text))
        for child in children:
            _serialize(child, out, root=False, xlink=False)
            if child.tail:
                out.append(escape(child.tail))
        out.append(f"</{local}>")


def sanitize_svg(data: bytes) -> str:
    """The icon re-serialized as clean SVG markup, or ``IconError`` saying what is refused."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not isinstance(data, bytes | bytearray):
        raise IconError(f"expected SVG bytes, got {type(data).__name__}")
    if len(data) > MAX_ICON_BYTES:
        raise IconError(f"icon is {len(data)} bytes; the limit is {MAX_ICON_BYTES}")
    if not data.strip():
        raise IconError("icon is empty")
    try:
        # Parsed as text: pyexpat then ignores any encoding the XML declaration claims, so
        # the declaration check below sees exactly what the parser will see.
        text = bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise IconError("icon is not UTF-8 text") from None
    if "\x00" in text:
        raise IconError("icon contains NUL characters")
    if _DECLARATION_RE.search(text):
        raise IconError("DOCTYPE and ENTITY declarations are not allowed")
    # Safe without defusedxml: DOCTYPE/ENTITY are refused above, so there is no DTD to load
    # and no entity to expand.
    parser = ET.XMLParser(target=_Builder())  # noqa: S314
    try:
        parser.feed(text)
        root = parser.close()
    except ET.ParseError as exc:
        raise IconError(f"icon is not well-formed XML ({exc})") from None
    if root.tag != f"{{{SVG_NS}}}svg":
        raise IconError(f"the root element must be <svg> in the SVG namespace, not {root.tag!r}")
    xlink = False
    for node in root.iter():
        _check_element(node)
        xlink = xlink or f"{{{XLINK_NS}}}href" in node.attrib
    out: list[str] = []
    _serialize(root, out, root=True, xlink=xlink)
    return "".join(out)


def load_icon(ref: str, env: str = "") -> str:
    """Read ``"package.module:file.svg"`` from an installed package and sanitize it.

    ``env``: the plugin's own environment (a runtime-installed distribution, never imported
    here): the file is read from its site-packages, and only from there."""
    match = _ICON_REF_RE.match(ref) if isinstance(ref, str) else None
    if match is None:
        raise IconError(f"{ref!r} is not 'package.module:filename.svg'")
    try:
        if env:
            data = _read_from_env(Path(env), match["package"], match["name"])
        else:
            resource = resources.files(match["package"]).joinpath(match["name"])
            with resource.open("rb") as handle:
                data = handle.read(MAX_ICON_BYTES + 1)
    except (ModuleNotFoundError, OSError, TypeError):
        raise IconError(f"icon resource {ref!r} was not found") from None
    return sanitize_svg(data)


def _read_from_env(env: Path, package: str, name: str) -> bytes:
    from plugins_core.distributions.environments import site_packages

    site = site_packages(env).resolve()
    path = (site / package.replace(".", "/") / name).resolve()
    if not path.is_relative_to(site) or not path.is_file():
        raise FileNotFoundError(name)
    with path.open("rb") as handle:
        return handle.read(MAX_ICON_BYTES + 1)
