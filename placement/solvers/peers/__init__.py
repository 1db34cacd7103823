"""Re-creations of what existing HA managers do, registered as `peer` solvers.

`proxmox`: Proxmox VE's HA manager (`proxmox-static`, `proxmox-basic`). `pacemaker`:
Pacemaker's placement strategies (`pacemaker-balanced`, `pacemaker-utilization`,
`pacemaker-minimal`). Each returns what the real tool would decide, even where that breaks
a limit: the checker then shows where, and the benchmark reports it.
"""
