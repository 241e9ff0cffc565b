"""The media pipeline: what happens to a landed file — metadata, XMP sidecar, thumbnail, search index.

Import the parts from their modules (`mediasyncd.pipeline.runner.Pipeline`, ...): this package file stays
empty so that reading the config (which needs only `options`) does not load the pipeline.
"""
