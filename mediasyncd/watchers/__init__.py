"""How we learn that a file exists and is complete: one `Watcher` protocol (`base`), poll today; the
remote agent and local folders (watchfiles) come as further implementations. Watchers depend on sources
and pure logic, never on transfer."""
