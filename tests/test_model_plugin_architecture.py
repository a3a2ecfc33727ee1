"""A model of the user's own architecture, declared by an in-process plugin module.

The module is a file in ``tmp_path`` put on ``sys.path`` and registered by
name with ``Registry.load(extra=[(name, "module")])``, which is what the
``-p MODULE`` command-line option does.
"""

from __future__ import annotations

import pickle
import sys
import textwrap

import pytest
import torch

from driftlab.models import LOADED_FORMATS, check_weights, load_model
from driftlab.registry import Registry, RegistryError
from tests.model_files import WRITERS, save_synthesis_model

MODULE = "acme_vision_models"

PLUGIN_SOURCE = '''
"""A user's own classifier, declared for driftlab."""

import torch
from torch import nn

from driftlab import hookimpl
from driftlab.models import TaskModelSpec


class AcmeNet(nn.Module):
    def __init__(self, num_classes, in_channels=3, hidden=6):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, hidden, 3, padding=1)
        self.norm = nn.BatchNorm2d(hidden)
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x):
        return self.head(torch.relu(self.norm(self.stem(x))).mean(dim=(2, 3)))


ACME_NET = TaskModelSpec(
    name="acme-net",
    task="classification",
    doc="Acme's production classifier",
    factory=AcmeNet,
    reference="Acme Corp.",
)


@hookimpl
def driftlab_task_models():
    return [ACME_NET]
'''


@pytest.fixture
def plugin_registry(tmp_path, monkeypatch):
    (tmp_path / f"{MODULE}.py").write_text(textwrap.dedent(PLUGIN_SOURCE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, MODULE, raising=False)
    registry = Registry.load(entry_points=False, extra=[(MODULE, MODULE)])
    assert registry.errors == [], registry.errors
    yield registry
    sys.modules.pop(MODULE, None)


def _trained(registry: Registry) -> torch.nn.Module:
    torch.manual_seed(0)
    model = registry.get("task_models", "acme-net").build(4, hidden=5)
    with torch.no_grad():
        model.norm.running_mean.uniform_(-0.1, 0.1)
    return model.eval()


def _x() -> torch.Tensor:
    return torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def test_plugin_module_declares_the_architecture(plugin_registry):
    assert plugin_registry.owner("task_models", "acme-net") == MODULE
    info = [p for p in plugin_registry.plugins if p.name == MODULE]
    assert info and info[0].distribution == "(in-process)" and info[0].module == MODULE


@pytest.mark.parametrize("fmt", LOADED_FORMATS)
def test_plugin_architecture_loads_from_every_format(fmt, plugin_registry, tmp_path):
    trained = _trained(plugin_registry)
    path = WRITERS[fmt](trained, tmp_path / f"acme.{fmt}")
    archive = fmt in ("torchscript", "exported")
    args = {} if archive else {"name": "acme-net", "options": {"hidden": 5}}
    loaded = check_weights(
        path,
        num_classes=4,
        task="classification",
        key="state_dict" if fmt == "checkpoint" else None,
        registry=plugin_registry,
        **args,
    )
    assert loaded.format == fmt
    assert loaded.architecture == (None if archive else "acme-net")
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(_x()), trained(_x()), rtol=1e-5, atol=1e-6)


def test_plugin_architecture_saved_by_synthesis_loads_with_its_normalization(
    plugin_registry, tmp_path
):
    trained = _trained(plugin_registry)
    path = save_synthesis_model(trained, tmp_path / "acme__fold0.pt")
    loaded = load_model(
        path, name="acme-net", num_classes=4, options={"hidden": 5}, registry=plugin_registry
    )
    assert loaded.normalization is not None and loaded.prefix == "model."
    with torch.no_grad():
        assert torch.equal(loaded.module(_x()), trained(_x()))


def test_plugin_spec_pickles_by_reference_for_worker_processes(plugin_registry):
    spec = plugin_registry.get("task_models", "acme-net")
    clone = pickle.loads(pickle.dumps(spec))
    assert clone == spec and clone.factory is spec.factory


def test_without_the_plugin_the_error_names_the_p_flag(plugin_registry, tmp_path):
    path = WRITERS["state_dict"](_trained(plugin_registry), tmp_path / "acme.pt")
    bare = Registry.load(entry_points=False)
    with pytest.raises(
        RegistryError, match=r"unknown task model 'acme-net'.*loaded with -p MODULE"
    ):
        load_model(path, name="acme-net", num_classes=4, registry=bare)
    with pytest.raises(RegistryError, match=r"-p MODULE"):
        check_weights(path, name="acme-net", num_classes=4, task="classification", registry=bare)
