"""SynosCD's state in Azure Table Storage: runtime settings, per-app flags and status, pass
history, the lease, webhook deliveries, sync requests and tombstones. One table, one partition per
kind of record; every write is ETag-guarded."""
