"""PMD files: per-model read instructions (docs/pmd-format.md).

``load_pool(dirs)`` loads and checks them, ``PmdPool.match()`` chooses one for a device,
``authoring.transforms.REGISTRY`` lists the value transforms a PMD may name.

Two sub-packages: ``authoring`` is the PMD language (what a file says, how files load, match a
device and transform values) with the tools that write and test one against a walk;
``distribution`` is how PMD sets reach a client (signed bundles, installed sets, updates, which set
and directories are active).
"""

from .authoring.loader import default_dirs, load_files, load_pool
from .authoring.matcher import PmdPool
from .authoring.model import Pmd, Source

__all__ = ["Pmd", "PmdPool", "Source", "default_dirs", "load_files", "load_pool"]
