"""Names a package re-exports but imports only when first used (PEP 562's module `__getattr__`): a package's public
names stay one import away, while a run that needs none of them never pays for their imports (torchvision for the
image sources and the transfer models, torch for the CLI's decisions before a run starts)."""
import importlib
from collections.abc import Callable, Mapping


def lazy_exports(package: str, names: Mapping[str, str]) -> Callable[[str], object]:
    """The `__getattr__` of `package` for `names` ({public name: module inside the package}): the module is imported
    on the first access of one of its names."""
    def __getattr__(name: str) -> object:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{names[name]}"), name)

    return __getattr__
