"""How we learn that a file exists and is complete: one `Watcher` protocol (`base`), poll, and local
folders (watchfiles waking a poll); the remote agent comes as a further implementation. Watchers depend on sources
and pure logic, never on transfer."""
