"""How bytes land: jobs from a watcher's sightings, pulled through a Source into partials, verified,
landed, and every outcome recorded by the Ledger."""
