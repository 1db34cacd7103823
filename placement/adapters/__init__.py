"""Adapters: import cluster state from real tools, export plans as scripts for them.

Import: `import_proxmox` (pvesh JSON), `import_pacemaker` (a CIB), `import_libvirt` (a
folder of domain XML files); each returns an `ImportResult` with the problem and a
warning for everything it could not map. Export: `export_script(problem, plan, target)`
for the targets in `TARGETS`. See docs/adapters.md.
"""

from placement.adapters.common import ImportOptions, ImportResult
from placement.adapters.export import ExportError, ExportOptions, export_script
from placement.adapters.libvirt import import_libvirt
from placement.adapters.names import TARGETS
from placement.adapters.pacemaker import import_pacemaker
from placement.adapters.proxmox import import_proxmox

__all__ = [
    "TARGETS",
    "ExportError",
    "ExportOptions",
    "ImportOptions",
    "ImportResult",
    "export_script",
    "import_libvirt",
    "import_pacemaker",
    "import_proxmox",
]
