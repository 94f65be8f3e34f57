"""The studio's server side: the JSON API a visual mapping editor calls (catalog introspection,
live validation with set_schema's own validator, diff, apply, save, previews), served on 127.0.0.1
only (:mod:`recvector.studio.server`). The page itself (React + React Flow) is not built yet, so
there is no ``recvector studio`` command: see issue 6's note.
"""
