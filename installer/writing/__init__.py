"""Writing configuration: the atomic writer with backups, safe apply with confirmation and
rollback, and the configuration already on the box."""
