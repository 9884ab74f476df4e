"""Forms as a browser submits them: parse a served page, collect what its form would post.

Tests that post fields of their own miss forms that cannot be submitted as served (issue 22:
the admin's service form served no ``organization`` input, then required one). These
helpers read the page the server sent and build exactly the data a browser would send:
enabled inputs with a name (checkboxes and radios only when checked, ``on`` when they have
no value), the selected options of each select (the first option when none is selected),
textareas' text, and the one submit button clicked, if it has a name. File inputs and
other submit buttons are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

_SKIPPED_INPUTS = {"submit", "button", "image", "reset", "file"}


@dataclass
class Control:
    tag: str
    name: str
    type: str = ""
    value: str = ""
    checked: bool = False
    disabled: bool = False
    multiple: bool = False
    options: list[tuple[str, bool]] = field(default_factory=list)  # (value, selected)
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass
class Form:
    attrs: dict[str, str]
    controls: list[Control] = field(default_factory=list)

    @property
    def action(self) -> str:
        return self.attrs.get("action", "")

    @property
    def method(self) -> str:
        return self.attrs.get("method", "get").lower()

    def names(self) -> set[str]:
        return {c.name for c in self.controls}

    def control(self, name: str) -> Control:
        for control in self.controls:
            if control.name == name:
                return control
        raise KeyError(name)

    def data(self, submit: str | None = None) -> dict[str, Any]:
        """What a browser posts; ``submit`` names the button clicked (``name`` or
        ``name=value``)."""
        out: dict[str, list[str]] = {}

        def add(name: str, value: str) -> None:
            out.setdefault(name, []).append(value)

        for control in self.controls:
            if control.disabled:
                continue
            if control.tag == "input":
                kind = control.type
                if kind in {"submit", "button", "image"}:
                    wanted = submit or ""
                    name, _, value = wanted.partition("=")
                    if control.name == name and (not value or value == control.value):
                        add(control.name, control.value)
                    continue
                if kind in _SKIPPED_INPUTS:
                    continue
                if kind in {"checkbox", "radio"}:
                    if control.checked:
                        add(control.name, control.value or "on")
                    continue
                add(control.name, control.value)
            elif control.tag == "button":
                wanted = submit or ""
                name, _, value = wanted.partition("=")
                clicked = control.type in {"", "submit"} and control.name == name
                if clicked and (not value or value == control.value):
                    add(control.name, control.value)
            elif control.tag == "select":
                chosen = [v for v, selected in control.options if selected]
                if not chosen and control.options and not control.multiple:
                    chosen = [control.options[0][0]]
                for value in chosen if control.multiple else chosen[-1:]:
                    add(control.name, value)
            elif control.tag == "textarea":
                add(control.name, control.value)
        return {k: v if len(v) > 1 else v[0] for k, v in out.items()}


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._select: Control | None = None
        self._option: list[Any] | None = None  # [value or None, selected, text]
        self._textarea: Control | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._form = Form(attrs=a)
            self.forms.append(self._form)
            return
        if self._form is None:
            return
        name = a.get("name", "")
        disabled = "disabled" in a
        if tag == "input" and name:
            self._form.controls.append(
                Control(
                    tag="input",
                    name=name,
                    type=a.get("type", "text").lower(),
                    value=a.get("value", ""),
                    checked="checked" in a,
                    disabled=disabled,
                    attrs=a,
                )
            )
        elif tag == "button" and name:
            self._form.controls.append(
                Control(
                    tag="button",
                    name=name,
                    type=a.get("type", "submit").lower(),
                    value=a.get("value", ""),
                    disabled=disabled,
                    attrs=a,
                )
            )
        elif tag == "select" and name:
            self._select = Control(
                tag="select", name=name, disabled=disabled, multiple="multiple" in a, attrs=a
            )
            self._form.controls.append(self._select)
        elif tag == "option" and self._select is not None:
            self._close_option()
            self._option = [a.get("value"), "selected" in a, ""]
        elif tag == "textarea" and name:
            self._textarea = Control(tag="textarea", name=name, disabled=disabled, attrs=a)
            self._form.controls.append(self._textarea)

    def handle_data(self, data: str) -> None:
        if self._option is not None:
            self._option[2] += data
        if self._textarea is not None:
            self._textarea.value += data

    def _close_option(self) -> None:
        if self._option is not None and self._select is not None:
            value, selected, text = self._option
            self._select.options.append((value if value is not None else text.strip(), selected))
        self._option = None

    def handle_endtag(self, tag: str) -> None:
        if tag == "option":
            self._close_option()
        elif tag == "select":
            self._close_option()
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            if self._textarea.value.startswith("\n"):  # the HTML parser drops one newline
                self._textarea.value = self._textarea.value[1:]
            self._textarea = None
        elif tag == "form":
            self._form = None


def forms_in(html: str) -> list[Form]:
    parser = _Parser()
    parser.feed(html)
    parser.close()
    return parser.forms


def form_in(html: str, *, has: str | None = None, id: str | None = None) -> Form:
    """The page's form with ``id``, or holding a control named ``has``, or its only
    POST form."""
    found = forms_in(html)
    if id is not None:
        found = [f for f in found if f.attrs.get("id") == id]
    if has is not None:
        found = [f for f in found if has in f.names()]
    if id is None and has is None:
        found = [f for f in found if f.method == "post"]
    if len(found) != 1:
        raise AssertionError(f"expected one form, found {len(found)}")
    return found[0]


def submit_as_served(
    client: Any,
    url: str,
    changes: dict[str, Any] | None = None,
    *,
    has: str | None = None,
    id: str | None = None,
    submit: str | None = None,
) -> Any:
    """GET ``url``, fill its form as served with ``changes`` (only names the form serves),
    and POST it to the form's action, as a browser would."""
    page = client.get(url)
    assert page.status_code == 200, page.status_code
    form = form_in(page.content.decode(), has=has, id=id)
    data = form.data(submit=submit)
    for name, value in (changes or {}).items():
        assert name in form.names(), f"the page serves no {name!r} input"
        data[name] = value
    return client.post(form.action or url, data)
