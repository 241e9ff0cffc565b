"""Safe purge (SPEC §3.4): delete remote media only when a verified copy is safely in the library.

The safety rule lives in `eligibility` (pure); `plan` sorts a remote's files into delete and keep;
`remote_ops` builds the batched remote commands; `runner` is the one place that executes a purge of one
remote; `scheduler` is the APScheduler service inside the daemon; `commands` is `mediasyncd purge`.
"""
