"""PMD files: per-model read instructions (docs/pmd-format.md).

``load_pool(dirs)`` loads and checks them, ``PmdPool.match()`` chooses one for a device,
``transforms.REGISTRY`` lists the value transforms a PMD may name.
"""

from .loader import default_dirs, load_files, load_pool
from .matcher import PmdPool
from .model import Pmd, Source

__all__ = ["Pmd", "PmdPool", "Source", "default_dirs", "load_files", "load_pool"]
