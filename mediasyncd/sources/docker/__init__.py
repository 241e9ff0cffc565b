"""Docker containers on this machine, read from this machine: their files through the container's own
root (`/proc/<pid>/root`, as `docker cp` reads them through the engine), listed, copied and hashed once
like a local folder; the container's shell (`docker exec -i … sh`) only for the remote agent and the
doctor's survey. Where that is not possible (an engine elsewhere, a user who may not read the
container's root, `files_via = "exec"`) the exec source does it all, and the summary says why."""
