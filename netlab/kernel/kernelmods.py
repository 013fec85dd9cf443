"""Which kernel modules are present, read from /sys/module and modules.builtin — never by loading one.

netlab loads no module, and never makes the kernel load one for it: creating a link of a kind
whose module is not loaded makes the kernel run `modprobe` (autoload), and some modules change
every namespace as they load — `ipip` adds a fallback `tunl0` to the host's own namespace
(net.core.fb_tunnels_only_for_init_net=0, the default). So a kind whose module exists on disk
but is not loaded is reported as missing, with the `modprobe` to run; only kinds that are
loaded, built in, or impossible to autoload anyway (no module tree) are tried.
"""
from __future__ import annotations

import functools
import os
from enum import Enum
from pathlib import Path


SYS_MODULE = Path("/sys/module")


class ModuleState(str, Enum):
    LOADED = "loaded"          # /sys/module/<name> exists (loaded, or built in with parameters)
    BUILTIN = "builtin"        # listed in modules.builtin
    LOADABLE = "loadable"      # a module file exists but is not loaded: `modprobe` it first
    UNKNOWN = "unknown"        # no module tree for this kernel: nothing can be autoloaded


def modules_dir(release: str | None = None) -> Path:
    return Path("/lib/modules") / (release or os.uname().release)


def module_state(name: str, *, sys_module: Path = SYS_MODULE, tree: Path | None = None) -> ModuleState:
    """How module `name` stands in the running kernel (dashes and underscores are the same name)."""
    name = name.replace("-", "_")
    if (sys_module / name).exists():
        return ModuleState.LOADED
    tree = tree or modules_dir()
    listed = _listed(tree / "modules.builtin", name)
    if listed:
        return ModuleState.BUILTIN
    if _listed(tree / "modules.dep", name, dep_file=True):
        return ModuleState.LOADABLE
    return ModuleState.UNKNOWN


def _listed(index: Path, name: str, dep_file: bool = False) -> bool:
    """Whether an index of module paths (modules.builtin, or modules.dep's left column) names `name`."""
    return name in _module_names(index, dep_file)


@functools.lru_cache(maxsize=8)
def _module_names(index: Path, dep_file: bool) -> frozenset[str]:
    """The module names an index lists, read once per process (modules.dep is ~0.5 MB)."""
    try:
        text = index.read_text()
    except OSError:
        return frozenset()
    names = set()
    for line in text.splitlines():
        path = line.split(":", 1)[0] if dep_file else line
        names.add(path.rsplit("/", 1)[-1].split(".ko", 1)[0].replace("-", "_"))
    return frozenset(names)


def not_loaded(names: tuple[str, ...] | list[str], **where: Path) -> list[str]:
    """The modules among `names` that exist but are not loaded (each would be autoloaded on use)."""
    return [name for name in names if module_state(name, **where) is ModuleState.LOADABLE]


def modprobe_hint(modules: list[str]) -> str:
    hint = f"modprobe {' '.join(modules)}"
    if "ipip" in modules:   # loading ipip adds a fallback tunl0 to every namespace, the host's too
        hint = f"sysctl -w net.core.fb_tunnels_only_for_init_net=2 && {hint} (the sysctl keeps tunl0 out of the host)"
    return hint
