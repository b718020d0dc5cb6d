"""A spec as YAML a person reads: the keys in the spec's order, each distribution on one
line, and comments above the keys that carry them (why `sweep refine` changed them)."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping, Sequence

import yaml

WIDTH = 100


class _Flow(dict):
    """A mapping written on one line: `{loguniform: [0.001, 0.1]}`."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Flow, lambda dumper, data: dumper.represent_mapping(
    "tag:yaml.org,2002:map", data, flow_style=True))

# a block mapping's key as the dumper writes it: indent, then a plain key
_KEY = re.compile(r"^( *)([A-Za-z0-9_][A-Za-z0-9_.\-]*):(?: |$)")


def _safe(text: str) -> str:
    """One line of comment text: no line breaks or control characters, which would end
    the comment and let a value written in it (a choice's name) become YAML."""
    return re.sub(r"[\x00-\x1f\x7f\u2028\u2029\x85]+", " ", text)


def comment_lines(sentences: Sequence[str], indent: int) -> list[str]:
    pad = " " * indent
    lines = []
    for sentence in sentences:
        wrapped = textwrap.wrap(_safe(sentence), width=max(40, WIDTH - indent - 4))
        lines += [f"{pad}# {'' if i == 0 else '  '}{part}" for i, part in enumerate(wrapped)]
    return lines


def spec_yaml(data: Mapping, comments: Mapping[tuple[str, ...], Sequence[str]],
              header: Sequence[str] = ()) -> str:
    """`data` (a spec as plain data) as YAML, with `comments[path]` above the key at
    `path` (("search_space", "optimizer.lr"), ("name",)) and `header` on top. Loads back
    (yaml.safe_load) into `data`."""
    shaped = dict(data)
    if isinstance(shaped.get("search_space"), Mapping):
        shaped["search_space"] = {k: _Flow(v) if isinstance(v, Mapping) else v
                                  for k, v in shaped["search_space"].items()}
    text = yaml.dump(shaped, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=WIDTH)
    out = comment_lines(header, 0)
    stack: list[tuple[int, str]] = []
    for line in text.splitlines():
        match = _KEY.match(line)
        if match:
            indent = len(match.group(1))
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, match.group(2)))
            out += comment_lines(comments.get(tuple(k for _, k in stack), ()), indent)
        out.append(line)
    return "\n".join(out) + "\n"
