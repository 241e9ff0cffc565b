"""Docker containers on this machine read from this machine: their files through the container's own root
(`/proc/<pid>/root`, as `docker cp` reads them through the engine), listed, copied and hashed once like a
local folder, while the container's shell (`docker exec -i … sh`) stays the channel for its paths, the
agent and liveness. Where that is not possible (an engine elsewhere, a user who may not read the
container's root, a root whose path the shell and this machine disagree on) the exec source does it all."""
