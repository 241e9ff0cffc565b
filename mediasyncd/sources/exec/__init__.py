"""Sources reached through a command that yields a POSIX shell on stdin/stdout: `docker exec -i <container>
sh` (transport "docker") or any configured argv (transport "exec": `kubectl exec -i … -- sh`, `podman exec
-i … sh`). One long-lived shell runs the framed listing, hashing and deleting commands; bytes come through
a fresh process per file or per tar stream, whose output is nothing but those bytes."""
