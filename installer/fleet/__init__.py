"""Many boxes: bundles and their archives, per-box trees from a devices CSV, the Ansible inventory
and fleet report, zero-touch first boot and the watchdog."""
