"""How we learn that a file exists and is complete: one `Watcher` protocol (`base`); poll (list + settle);
the remote agent (`agent`: inotify events from a script run on the remote, poll as its fallback); local
folders (watchfiles waking a poll). Watchers depend on sources and pure logic, never on transfer."""
