"""Config validation: strict, positioned errors; defaults documented and shipped consistently."""
import dataclasses
from pathlib import Path

import pytest
import yaml

from pipeline.config import load_config
from pipeline.schema import SECTIONS, Config
from stages.errors import UserError

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("text,message", [
    ("model:\n  hidden_size: 8\n  hiden: 3\n", "c.yaml:3:3: unknown key 'model.hiden'"),
    ("model:\n  hidden_size: 8\n  hidden_size: 9\n", "c.yaml:3:3: duplicate key 'hidden_size'"),
    ("train:\n  steps: ten\n", "c.yaml:2:10: 'train.steps' must be int"),
    ("train:\n  steps: 0\n", "c.yaml:2:10: 'train.steps' must be > 0"),
    ("model:\n  dropout: 1.0\n", "'model.dropout' must be in [0, 1)"),
    ("train:\n  optimizer: rmsprop\n", "'train.optimizer' must be one of sgd, adagrad, adam, adamw"),
    ("modle:\n  x: 1\n", "c.yaml:1:1: unknown section 'modle'"),
    ("model:\n  hidden_size: [1\n", "c.yaml:3:1: YAML syntax error"),
    ("corpus:\n  sources: []\n", "'corpus.sources' must be a non-empty list"),
    ("corpus:\n  sources:\n    - ftp: x\n", "a source needs one of"),
])
def test_mistakes_name_the_key_and_position(tmp_path, text, message):
    with pytest.raises(UserError) as e:
        load_config(write(tmp_path, text))
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_values_are_typed_and_sources_normalized(tmp_path):
    cfg = load_config(write(tmp_path, "train:\n  learning_rate: 1\ncorpus:\n  sources:\n"
                                      "    - path: a/*.txt\n    - url: http://x/y\n      sha256: ab\n"))
    assert cfg.train.learning_rate == 1.0 and isinstance(cfg.train.learning_rate, float)
    assert cfg.corpus.sources == ({"kind": "file", "path": "a/*.txt"},
                                  {"kind": "url", "url": "http://x/y", "sha256": "ab"})
    assert cfg.model == Config().model


def test_missing_file_says_how_to_fix(tmp_path):
    with pytest.raises(UserError, match="does not exist; pass --config"):
        load_config(tmp_path / "nope.yaml")


def test_shipped_pipeline_yaml_lists_every_key_with_its_default():
    raw = yaml.safe_load((REPO / "pipeline.yaml").read_text())
    cfg = load_config(REPO / "pipeline.yaml")
    for name, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            if f.name == "metrics":
                continue          # optional: absent means "all registered metrics"
            assert f.name in raw[name], f"pipeline.yaml lacks {name}.{f.name}"
            assert getattr(getattr(cfg, name), f.name) == f.default, f"{name}.{f.name}"


def test_readme_documents_every_key():
    readme = (REPO / "README.md").read_text()
    for name, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            assert f"`{name}.{f.name}`" in readme, f"README lacks {name}.{f.name}"


def test_readme_and_schema_name_every_built_in_source_kind():
    """The corpus.sources row once lacked `s3`: each kind shipped in setup.cfg must be spelled
    there and in the schema's help, as a config writes it (`path:`, or `kind: s3`)."""
    from importlib import metadata

    from pipeline.config import SOURCE_KEYS
    row = next(line for line in (REPO / "README.md").read_text().splitlines()
               if line.startswith("| `corpus.sources`"))
    help_text = dataclasses.fields(SECTIONS["corpus"])[0].metadata["help"]
    kinds = {e.name for e in metadata.entry_points(group="shakespeare_cifg.sources")
             if e.value.startswith("stages.")}
    assert {"bundled", "file", "url", "s3"} <= kinds
    for kind in kinds:
        spelled = f"`{SOURCE_KEYS[kind][0]}:" if kind in SOURCE_KEYS else f"kind: {kind},"
        assert spelled in row and spelled in help_text, (kind, spelled)


def test_every_shipped_config_is_valid():
    for path in [REPO / "pipeline.yaml", *sorted((REPO / "configs").glob("*.yaml"))]:
        load_config(path)


SHIPPED = sorted((REPO / "configs").glob("*.yaml")) + sorted((REPO / "benchmarks").glob("sweeps*/*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_every_shipped_config_loads(path):
    """A typo in a benchmark or example config would otherwise surface only an hour into a run."""
    cfg = load_config(path)
    assert isinstance(cfg, Config)


@pytest.mark.parametrize("text", ["train:\n  threads: 2\n", "train:\n  parallel: lanes\n",
                                  "train:\n  parallel: layers\n", "train:\n  threads: true\n"])
def test_removed_keys_name_their_replacement(tmp_path, text):
    with pytest.raises(UserError) as e:
        load_config(write(tmp_path, text))
    message = str(e.value)
    assert "c.yaml:2:" in message and "was removed" in message and "train.processes" in message
    assert "\n" not in message


def test_threads_one_still_loads_and_keeps_the_train_fingerprint(tmp_path):
    """`train.threads: 1` (every shipped config had it) means what always happens now, and the
    Train folder is the one the key's runs wrote."""
    from pipeline.tasks import Train
    plain = write(tmp_path, "model:\n  hidden_size: 8\n")
    with_key = tmp_path / "k.yaml"
    with_key.write_text("model:\n  hidden_size: 8\ntrain:\n  threads: 1\n")
    assert load_config(with_key).train == load_config(plain).train
    assert Train(config=str(with_key)).fingerprint() == Train(config=str(plain)).fingerprint()
    assert Train(config=str(plain)).slice()["train.threads"] == 1
