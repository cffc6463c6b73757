"""Core, used by every stage: registries, errors, file formats (io), the output layout
(paths), provenance hashes, the config schema, tasks and the command-line wrapper.

Imports nothing from the stages; imports no heavy library at module level.
"""
